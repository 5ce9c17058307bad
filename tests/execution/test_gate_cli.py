"""The label gate through the CLI and the flow: every refusal says why, exits 0 with `skipped`, changes nothing."""

import pytest

from tests.execution.conftest import NAMESPACE, PLAN_PATH, REPO, World


def refused(world: World, flow: str = "apply") -> list[str]:
    world.kube.clear_requests()
    result = world.cli(flow, "--execute", f"--pr={world.pr}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert world.kube.count_requests(method="PATCH") + world.kube.count_requests(method="POST") == 0, "nothing ran"
    assert world.replicas("web") == 2
    return result.stdout.splitlines()[-2:]


@pytest.mark.parametrize(("actor", "role"), [("tess", "triage"), ("rita", "read")])
def test_a_label_added_without_write_permission_is_refused(world: World, actor: str, role: str) -> None:
    world.label("execute-plan", actor=actor)
    assert refused(world) == [f"Refusing to execute: label 'execute-plan' was added by '{actor}' whose permission "
                              f"is '{role}' (needs write, maintain or admin).", "skipped"]


def test_a_closed_pr_is_refused(world: World) -> None:
    world.label("rollback-plan")
    world.github.close_pr(REPO, world.pr)
    assert refused(world, "rollback") == [f"Refusing to execute: PR #{world.pr} is closed.", "skipped"]


def test_a_local_plan_that_differs_from_the_pr_is_refused(world: World) -> None:
    world.label("execute-plan")
    (world.root / PLAN_PATH).write_text(world.plan_text.replace("replicas: 4", "replicas: 40"))
    last = refused(world)
    assert last[0].startswith("Refusing to execute: the plan file here (blob ") and f"PR #{world.pr}" in last[0]
    assert world.kube.list_objects("ConfigMap", NAMESPACE) == [], "no record: nothing was prepared"


def test_require_approval_refuses_an_unreviewed_head_and_runs_a_reviewed_one(world: World) -> None:
    world.label("execute-plan")
    world.kube.clear_requests()
    unreviewed = world.cli("apply", "--execute", f"--pr={world.pr}", "--require-approval")
    assert unreviewed.stdout.splitlines()[-2:] == [
        f"Refusing to execute: PR #{world.pr} has no approving review on head "
        f"{world.github.head_sha(REPO, world.pr)[:7]}.", "skipped"]
    assert world.kube.count_requests(method="PATCH") == 0

    world.github.add_review(REPO, world.pr, "walt", "APPROVED")
    reviewed = world.cli("apply", "--execute", f"--pr={world.pr}", "--require-approval")
    assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
    assert world.replicas("web") == 4
