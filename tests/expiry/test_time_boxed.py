"""Time-boxed plans end to end: the CLI applies a plan with `expires:` on the session's Prefect server, the
apply schedules a run of infra-rollback/prod, and a real worker runs it at expiry against the sandbox cluster,
commenting on the GitHub test server's PR."""

import contextlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from core.plan import load_plan
from core.record import record_name
from integrations.rollback_schedule import EXPIRY_TAG
from tests.execution.conftest import PLAN, PLAN_PATH, REPO, World
from tests.expiry.conftest import RollbackWorker


def timed_plan(expires: str) -> str:
    return PLAN.replace("actions:", f"expires: {expires}\nactions:")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def plan_record(world: World) -> str:
    """The record name of the world's plan, as its checkout names it (record names use repository paths)."""
    with contextlib.chdir(world.root):
        return record_name(load_plan(Path(PLAN_PATH)))


def expiry_runs(world: World, since: datetime) -> list[FlowRun]:
    """The runs scheduled at expiry for the world's plan, oldest first, created after `since`."""
    name = plan_record(world)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[EXPIRY_TAG, name])))
    return sorted((run for run in runs if run.created is not None and run.created >= since),
                  key=lambda run: run.created or since)


def wait_final(run: FlowRun, worker: RollbackWorker, timeout: float = 150) -> FlowRun:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            found = client.read_flow_run(run.id)
            if found.state is not None and found.state.type.value in FINAL:
                return found
            time.sleep(1)
    raise AssertionError(f"the scheduled rollback did not finish; worker log:\n{worker.log()[-4000:]}")


def comments(world: World, flow: str) -> list[str]:
    return [c.body for c in world.github.comments[REPO].values()
            if c.body.startswith(f"<!-- infra-orchestrator:{flow}")]


def now_on_server() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def snapshot(world: World) -> dict[str, Any]:
    return {"web": world.replicas("web"), "api": world.resources("api"), "hpa": world.hpa("web")}


def test_an_apply_with_expires_2s_is_rolled_back_exactly_by_the_scheduled_run(
        world: World, rollback_worker: RollbackWorker) -> None:
    since = now_on_server()
    before = snapshot(world)
    world.write_plan(timed_plan("2s"))
    world.label("execute-plan")

    applied = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stdout.splitlines()[-1] == "succeeded", applied.stdout
    assert world.replicas("web") == 4
    [scheduled] = expiry_runs(world, since)
    assert scheduled.parameters["expiry_record"] == plan_record(world)
    assert scheduled.parameters["pr"] == world.pr and scheduled.parameters["execute"] is True
    assert len(scheduled.parameters["expiry_digest"]) == 64
    assert any(line.startswith("note: rolls back at ") and line.endswith(f"/runs/flow-run/{scheduled.id}")
               for line in applied.stdout.splitlines()), applied.stdout
    [apply_comment] = comments(world, "apply")
    assert f"/runs/flow-run/{scheduled.id}" in apply_comment and "rolls back at" in apply_comment

    finished = wait_final(scheduled, rollback_worker)

    assert finished.state is not None and finished.state.type.value == "COMPLETED", rollback_worker.log()[-4000:]
    assert snapshot(world) == before, "restored exactly"
    [rollback_comment] = comments(world, "rollback")
    assert "scheduled rollback at expiry: started" in rollback_comment, rollback_comment
    assert "late (scheduled for" in rollback_comment or "on time" in rollback_comment

    # the same parameters again (a replay from the UI): the record changed since, so the run is refused
    with get_client(sync_client=True) as client:
        replay = client.create_flow_run_from_deployment(scheduled.deployment_id, parameters=scheduled.parameters)
    replayed = wait_final(replay, rollback_worker)
    assert replayed.state is not None and replayed.state.name == "Refused", replayed.state
    assert "the record changed since this rollback was scheduled" in (replayed.state.message or "")
    assert snapshot(world) == before


def state_of(run: FlowRun) -> tuple[str, str]:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None
    return state.type.value, state.message or ""


def apply_timed(world: World, expires: str) -> str:
    world.write_plan(timed_plan(expires))
    world.label("execute-plan")
    applied = world.cli("apply", "--execute", f"--pr={world.pr}")
    assert applied.returncode == 0 and applied.stdout.splitlines()[-1] == "succeeded", applied.stdout
    return applied.stdout


def test_a_manual_rollback_first_cancels_the_scheduled_one(world: World, rollback_deployment: World) -> None:
    since = now_on_server()
    before = snapshot(world)
    applied = apply_timed(world, "1h")
    [scheduled] = expiry_runs(world, since)
    assert state_of(scheduled)[0] == "SCHEDULED"
    [line] = [line for line in applied.splitlines() if line.startswith("note: rolls back at ")]
    due = line.removeprefix("note: rolls back at ").split(" ")[0]
    status = world.github.latest_statuses(REPO, world.github.head_sha(REPO, world.pr))["infra/apply"]
    assert (status.state, status.description) == ("success", f"5 steps succeeded; rolls back at {due}")
    world.label("rollback-plan")

    rolled = world.cli("rollback", "--execute", f"--pr={world.pr}")

    assert rolled.returncode == 0 and rolled.stdout.splitlines()[-1] == "succeeded", rolled.stdout
    assert state_of(scheduled) == ("CANCELLED", "a rollback ran first")
    assert any(line.startswith("note: cancelled the rollback scheduled at expiry (a rollback ran first): ")
               and line.endswith(str(scheduled.id)) for line in rolled.stdout.splitlines()), rolled.stdout
    assert snapshot(world) == before


def test_a_re_apply_replaces_the_scheduled_rollback(world: World, rollback_deployment: World) -> None:
    since = now_on_server()
    apply_timed(world, "1h")
    [first] = expiry_runs(world, since)

    again = apply_timed(world, "2h")

    first_again, second = expiry_runs(world, since)
    assert first_again.id == first.id
    assert state_of(first) == ("CANCELLED", "replaced by a new apply of the plan")
    assert state_of(second)[0] == "SCHEDULED"
    assert second.parameters["expiry_digest"] != first.parameters["expiry_digest"]
    assert first.expected_start_time is not None and second.expected_start_time is not None
    gap = (second.expected_start_time - first.expected_start_time).total_seconds()
    assert 3600 - 120 < gap < 3600 + 120, gap
    assert "cancelled the rollback scheduled at expiry (replaced by a new apply of the plan): " in again
    world.label("rollback-plan")  # leave nothing scheduled behind
    assert world.cli("rollback", "--execute", f"--pr={world.pr}").returncode == 0
    assert state_of(second)[0] == "CANCELLED"


def test_a_drifted_object_at_expiry_is_reported_and_left_alone(world: World,
                                                               rollback_worker: RollbackWorker) -> None:
    since = now_on_server()
    api_before = world.resources("api")
    world.write_plan("""\
namespace: shop
target: prod
expires: 20s
actions:
  - {type: scale_workload, name: web, replicas: 4}
  - {type: update_resources, name: api, container: app, requests: {cpu: 300m}, limits: {cpu: 600m}}
""")
    world.label("execute-plan")
    applied = world.cli("apply", "--execute", f"--pr={world.pr}")
    assert applied.stdout.splitlines()[-1] == "succeeded", applied.stdout
    scaled = world.kube.kubectl("scale", "-n", "shop", "deployment/web", "--replicas=7")
    assert scaled.returncode == 0, scaled.stderr
    [scheduled] = expiry_runs(world, since)

    finished = wait_final(scheduled, rollback_worker)

    assert world.replicas("web") == 7, "the drifted object is left alone, never forced"
    assert world.resources("api") == api_before, "the rest is restored"
    assert finished.state is not None and finished.state.type.value == "FAILED", finished.state
    [comment] = comments(world, "rollback")
    assert "drifted" in comment and "deployment/web" in comment, comment


def test_a_time_boxed_apply_whose_rollback_cannot_be_scheduled_is_refused_before_any_change(world: World) -> None:
    since = now_on_server()
    before = snapshot(world)
    world.write_plan(timed_plan("1h").replace("target: prod", "target: canary"))  # no infra-rollback/canary
    world.label("execute-plan")

    refused = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert refused.returncode == 0, refused.stdout + refused.stderr
    assert refused.stdout.splitlines()[-2:] == [
        "Refusing to execute: expires: the rollback at expiry cannot be scheduled (the Prefect server has no "
        "deployment infra-rollback/canary); a time-boxed change is applied only when its rollback is scheduled.",
        "skipped"], refused.stdout
    assert snapshot(world) == before
    assert expiry_runs(world, since) == []
    records = [item for item in world.kube.list_objects("configmap", "shop")
               if item["metadata"]["name"].startswith("infra-record-")]
    assert records == [], "no record: nothing was applied"


def test_the_preview_and_infra_plan_say_the_plan_will_roll_back(world: World) -> None:
    world.write_plan(timed_plan("72h"))

    previewed = world.cli("apply")

    assert previewed.returncode == 0, previewed.stdout + previewed.stderr
    assert ("note: time-boxed (expires: 72h): once applied, this change is rolled back by itself 72h after the "
            "apply finishes, by a scheduled infra-rollback run (no rollback-plan label needed)"
            ) in previewed.stdout.splitlines(), previewed.stdout

    reviewed = world.cli("plan")

    assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
    assert "warning: time-boxed (expires: 72h): once applied, this change is rolled back by itself 72h after " \
           "the apply finishes" in reviewed.stdout, reviewed.stdout
