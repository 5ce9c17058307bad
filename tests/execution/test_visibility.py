"""What people see after an executed run, through the CLI, on the PR (GitHub test server) and in Prefect (the
session's server): a failed step's error on its own row, in an `error:` line and at ERROR in the run's logs; a
refusal as a PR comment and a failing status, said once per head and reason, and as a cancelled `Refused` run."""

import json
from pathlib import Path
from typing import Any

from tests.execution.conftest import NAMESPACE, REPO, World
from tests.execution.test_unreachable import dead_kubeconfig


def latest_flow_run() -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]


def error_logs(flow_run_id: Any) -> list[str]:
    import logging

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]),
                                          level=LogFilterLevel(ge_=logging.ERROR)))
    return [log.message for log in logs]


def test_a_failed_step_explains_itself_on_its_own_row(world: World, prefect_api: str) -> None:
    world.write_plan(f"namespace: {NAMESPACE}\ntarget: prod\nactions:\n"
                     "  - {type: scale_workload, name: web, replicas: 4}\n"
                     "  - {type: scale_workload, name: ghost, replicas: 2}\n")
    world.label("execute-plan")

    done = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: deployment/ghost: ") and "not found" in errors[0]
    rows = [line for line in done.stdout.splitlines() if line.startswith("change: ")]
    assert any(line.startswith("change: deployment/web replicas: 2 → 4 (succeeded") for line in rows), rows
    assert "WARNING" not in done.stderr and "Concurrency limits" not in done.stderr, done.stderr
    run = latest_flow_run()
    assert (run.state.type.value, run.state.message) == ("FAILED", f"1 of 3 steps failed: {errors[0][7:]}")
    assert errors[0] in error_logs(run.id), "the error is logged at ERROR in the flow run"
    assert world.replicas("web") == 4


def test_a_refusal_is_said_on_the_pr_once_per_head_and_reason(world: World, prefect_api: str) -> None:
    head = world.github.head_sha(REPO, world.pr)
    world.label("execute-plan", actor="tess")  # triage: may not trigger a run

    first = world.cli("apply", "--execute", f"--pr={world.pr}")

    reason = "label 'execute-plan' was added by 'tess' whose permission is 'triage' (needs write, maintain or admin)"
    assert (first.returncode, first.stdout.splitlines()[-2:]) == (0, [f"Refusing to execute: {reason}.", "skipped"])
    comments = [comment.body for comment in world.github.issue_comments(REPO, world.pr)]
    assert len(comments) == 1 and f"Refusing to execute: {reason}." in comments[0]
    assert "ask someone with write access to add the label again" in comments[0]
    status = world.github.latest_statuses(REPO, head)["infra/apply"]
    assert status.state == "failure" and "ask someone with write access to add the label again" in \
        status.description and "triage" in status.description
    run = latest_flow_run()
    assert (run.state.type.value, run.state.name, run.state.message) == (
        "CANCELLED", "Refused", f"Refusing to execute: {reason}.")

    world.github.remove_label(REPO, world.pr, "execute-plan", "tess")
    world.label("execute-plan", actor="tess")
    again = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert again.stdout.splitlines()[-1] == "skipped"
    assert len(world.github.issue_comments(REPO, world.pr)) == 1, "the same refusal on the same head: said once"
    world.github.remove_label(REPO, world.pr, "execute-plan", "tess")
    world.label("execute-plan", actor="rita")  # another reason: said once more
    world.cli("apply", "--execute", f"--pr={world.pr}")
    assert len(world.github.issue_comments(REPO, world.pr)) == 2
    assert world.replicas("web") == 2


def test_the_apply_preview_reads_live_values_and_says_nothing_changed(world: World, tmp_path: Path) -> None:
    world.kube.clear_requests()

    previewed = world.cli("apply")

    lines = previewed.stdout.splitlines()
    assert previewed.returncode == 0 and lines[-2:] == ["previewed: nothing changed", "succeeded"], lines
    assert "change: deployment/web replicas: 2 → 4 (previewed)" in lines
    assert "change: deployment/api app requests.cpu: 100m → 300m (previewed)" in lines
    assert "?" not in "\n".join(line for line in lines if line.startswith("change: "))
    assert '"note": "will scale deployment/web to 4"' in previewed.stdout, "the future tense: nothing ran"
    requests = world.kube.requests()
    assert {request["method"] for request in requests} == {"GET"}, "a preview only reads"
    assert {request.get("command") for request in requests} - {""} == {"kubectl get"}, "one batched kubectl call"

    unreachable = world.cli("apply", KUBECONFIG=str(dead_kubeconfig(world, tmp_path)))

    notes = [line for line in unreachable.stdout.splitlines() if line.startswith("note: the cluster could not be")]
    assert len(notes) == 1 and notes[0].endswith("planned values only"), unreachable.stdout
    assert "change: deployment/web replicas: ? → 4 (previewed)" in unreachable.stdout
    assert unreachable.stdout.splitlines()[-2:] == ["previewed: nothing changed", "succeeded"]


def test_the_rollback_preview_after_a_rollback_has_nothing_to_do(world: World) -> None:
    world.label("execute-plan")
    assert world.cli("apply", "--execute", f"--pr={world.pr}").returncode == 0
    world.label("rollback-plan")
    assert world.cli("rollback", "--execute", f"--pr={world.pr}").returncode == 0

    previewed = world.cli("rollback")

    lines = previewed.stdout.splitlines()
    assert "note: already rolled back: nothing to do" in lines
    assert not [line for line in lines if line.startswith("preview:")]
    assert lines[-2:] == ["previewed: nothing changed", "succeeded"]


def test_every_execution_posts_a_new_comment_carrying_its_provenance(world: World) -> None:
    head = world.github.head_sha(REPO, world.pr)
    world.label("execute-plan")

    first = world.cli("apply", "--execute", f"--pr={world.pr}", "-o", "json")

    document = json.loads(first.stdout)
    provenance = document["provenance"]
    assert (provenance["approver"], provenance["permission"], provenance["head_sha"]) == ("alice", "admin", head)
    assert provenance["labeled_at"] and provenance["record"].startswith("infra-record-")
    assert len(provenance["plan_digest"]) == 64 and len(provenance["record_digest"]) == 64
    assert provenance["run_url"] is None or "/runs/flow-run/" in provenance["run_url"]
    assert any(line.startswith("note: approved by alice (admin, labeled ") for line in document["lines"])
    comments = world.github.issue_comments(REPO, world.pr)
    assert len(comments) == 1 and f"**Provenance**: approved by alice (admin, labeled {provenance['labeled_at']}) " \
        f"at head {head[:12]}; record {provenance['record']}" in comments[0].body

    world.label("execute-plan")
    second = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert second.returncode == 0, second.stdout + second.stderr
    assert len(world.github.issue_comments(REPO, world.pr)) == 2, "a second execution is a new comment: notified"


def test_require_plan_refuses_until_infra_plan_succeeded_on_the_head(world: World) -> None:
    head = world.github.head_sha(REPO, world.pr)
    world.label("execute-plan")

    refused = world.cli("apply", "--execute", f"--pr={world.pr}", "--require-plan")

    assert refused.stdout.splitlines()[-2:] == [
        f"Refusing to execute: infra/plan was not set on head {head[:7]} (--require-plan): run infra-plan on it, then "
        "add the label again.", "skipped"], refused.stdout
    world.github.add_status(REPO, head, "failure", "infra/plan", "alice")
    failing = world.cli("apply", "--execute", f"--pr={world.pr}", "--require-plan")
    assert f"infra/plan is failure on head {head[:7]}" in failing.stdout.splitlines()[-2]
    assert world.replicas("web") == 2

    world.github.add_status(REPO, head, "success", "infra/plan", "alice")
    applied = world.cli("apply", "--execute", f"--pr={world.pr}", "--require-plan")

    assert applied.returncode == 0 and applied.stdout.splitlines()[-1] == "succeeded", applied.stdout
    assert world.replicas("web") == 4


def test_the_apply_flow_preview_reads_live_values_too(world: World) -> None:
    import subprocess
    import sys

    script = ("from flows.apply import infra_apply\n"
              "print(infra_apply(plan='ops/plans/infra-scale/prod/plan.yaml').render())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=world.root, env=world.env, capture_output=True,
                          text=True, timeout=240)

    lines = done.stdout.splitlines()
    assert "change: deployment/web replicas: 2 → 4 (previewed)" in lines, done.stdout + done.stderr
    assert lines[-2:] == ["previewed: nothing changed", "succeeded"]
