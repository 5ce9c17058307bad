"""Plans applied by the old scripts (no record): the seed's rollback, but only for changes that are live."""

from tests.execution.conftest import NAMESPACE, World
from tests.execution.test_scenarios import rollback


def test_a_plan_that_never_ran_has_nothing_to_roll_back(world: World) -> None:
    world.kube.clear_requests()

    result = rollback(world)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: nothing to roll back: none of the plan's changes is live, so it was never applied" in result.stdout
    changes = [r for r in world.kube.requests() if r["method"] in ("PATCH", "DELETE") and "/leases/" not in r["path"]]
    assert changes == [], "nothing but the lock (taken and deleted) was written"
    assert world.replicas("web") == 2


def test_a_plan_applied_by_the_old_scripts_gets_the_seed_rollback(world: World) -> None:
    world.kube.kubectl("-n", NAMESPACE, "set", "image", "deployment/web", "app=shop/app:1.1", check=True)
    world.kube.kubectl("-n", NAMESPACE, "scale", "deployment/web", "--replicas=4", check=True)  # as infra.apply.mjs

    result = rollback(world)

    assert result.returncode == 0, result.stdout + result.stderr
    image = world.deployment("web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "shop/app:1.0", "the seed's rollout undo reverts the template (kubernetes#25236), as before"
    assert world.replicas("web") == 4, "and does not restore replicas: which is why records exist"
    assert "note: no execution record for this plan: using the Node scripts' (v0) rollback" in result.stdout
    commands = [line for line in result.stdout.splitlines() if '"command"' in line]
    assert any("rollout undo deployment/web" in line for line in commands)
    assert not any("deployment/api" in line for line in commands), "api was never changed: not undone"
