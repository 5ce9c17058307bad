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
