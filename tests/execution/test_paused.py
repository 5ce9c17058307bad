"""A paused Deployment through the CLI: apply refuses a plan that would roll it out, with one line, before any
change; a plan that only scales it runs; infra-plan names it."""

from tests.execution.conftest import NAMESPACE, World


def pause(world: World, name: str) -> None:
    world.kube.kubectl("-n", NAMESPACE, "rollout", "pause", f"deployment/{name}", check=True)
    world.kube.settle()


def writes(world: World) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in world.kube.requests()
            if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and "/leases" not in r["path"]]


def test_apply_refuses_a_paused_deployment_it_would_roll_out(world: World) -> None:
    pause(world, "api")  # the plan changes api's resources: a rollout that would never happen
    world.kube.clear_requests()

    world.label("execute-plan")
    result = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-2:] == [
        "Refusing to execute: deployment/api is paused: resume it or remove it from the plan.", "skipped"]
    assert writes(world) == [], "nothing changed"
    assert world.replicas("web") == 2 and world.kube.get("Lease", NAMESPACE, "infra-orchestrator-lock") is None

    plan = world.cli("plan")
    assert "deployment/api is paused: resume it or remove it from the plan" in plan.stdout, plan.stdout


def test_a_paused_deployment_the_plan_only_scales_is_applied(world: World) -> None:
    pause(world, "web")  # the plan scales web and gives it an HPA: neither needs a rollout

    world.label("execute-plan")
    result = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert result.returncode == 0 and result.stdout.rstrip().endswith("succeeded"), result.stdout + result.stderr
    assert world.replicas("web") == 4 and world.deployment("web")["spec"]["paused"] is True
