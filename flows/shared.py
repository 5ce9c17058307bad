"""What the apply and rollback flows share: the gate requirement, an executing run's interfaces, run names and final
states."""

import os
from collections.abc import Callable
from pathlib import Path

import github  # noqa: F401 - see below
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Cancelled, Completed, Failed

from core.conventions import DEFAULT_PLAN, Flow, repository_path
from core.errors import InputError
from core.gate import GateRequirement
from core.lifecycle.ports import Execution
from core.report import RunReport, failure_reason
from core.settings import Settings
from core.vocabulary import Outcome
from tasks.artifacts import record_refusal
from tasks.gate import TaskGate
from tasks.kept import keep
from tasks.kube import TaskCluster
from tasks.lock import TaskLock
from tasks.plan import parsed_plan

# PyGithub (the gate's client) is imported here, before a flow run starts, not inside the gate's task: there,
# with Prefect's event and log threads running, the same import held the gate for 0.2-0.3 s instead of 0.1 s.

MAX_PARALLEL_STEPS = Settings.from_env(os.environ).max_parallel_steps
"""kubectl calls on different workloads run side by side, this many at a time (each is one process)."""
TASK_WORKERS = MAX_PARALLEL_STEPS + 1
"""The flows' task runner threads: the steps' calls, and one for the apply record's read or save, which run beside
them (core.lifecycle.apply) and must not hold back a step."""


def gate_requirement(flow: Flow, plan: str, pr: int | None, repository: str | None,
                     require_approval: bool, head_sha: str | None = None) -> GateRequirement | None:
    """What the gate must check. `repository` ("owner/name", from the triggering event) must be one this worker
    serves (GH_OWNER/GH_REPO or INFRA_REPOSITORIES); `require_approval` also asks for an approving review of the
    PR's head by someone with write access; `head_sha` (the event's pull_request.head.sha when the label was
    added) refuses a head that moved since."""
    if pr is None:
        return None
    return GateRequirement(flow=flow, pr=pr, plan_path=repository_path(plan), repository=repository,
                           require_approval=require_approval, expected_head_sha=head_sha)


def execution(flow: Flow, plan: str, pr: int | None, repository: str | None, require_approval: bool,
              head_sha: str | None, lock_timeout_s: float, gate: TaskGate | None = None) -> Execution:
    """What an executing run needs: the cluster, the gate (`gate`, the flow's own when it reads the gate's
    decision afterwards; checking the head SHA the labeled event carried, when given) and the target's lock."""
    requirement = gate_requirement(flow, plan, pr, repository, require_approval, head_sha)
    return Execution(TaskCluster(), gate or TaskGate(), TaskLock(lock_timeout_s), requirement)


def settle_status(gate: TaskGate, execution: Execution | None, report: RunReport) -> RunReport:
    """After an executing run, its outcome on the PR (TaskGate.settle); a preview's report as it is."""
    return report if execution is None else gate.settle(execution.requirement, report)


def plan_target(plan: str) -> str:
    """The plan's target (as its artifacts are keyed), or its directory's name when the plan cannot be read: a
    run name must not fail where the run itself reports the bad plan."""
    try:
        loaded = parsed_plan(Path(plan))
    except (InputError, OSError):
        return Path(plan).parent.name or plan
    return loaded.target or loaded.namespace


def run_name(flow: Flow) -> Callable[[], str]:
    """`flow_run_name` for apply, rollback and plan: "apply prod PR#42", or "apply prod preview" when nothing is
    executed (a plan names its PR whenever it comments on one), instead of Prefect's random names."""

    def name() -> str:
        parameters = flow_run.parameters
        target = plan_target(str(parameters.get("plan") or DEFAULT_PLAN))
        pr = parameters.get("pr")
        on_pr = pr is not None and (parameters.get("execute") or flow == Flow.PLAN)
        return f"{flow.value} {target} " + (f"PR#{pr}" if on_pr else "preview")

    return name


def tag_run(pr: int | None) -> None:
    """Adds `pr-<N>` to this flow run's tags, however it was started (CLI, deployment trigger, UI), so the UI
    filters a PR's runs."""
    context = FlowRunContext.get()
    if pr is None or context is None or context.flow_run is None:
        return
    tags = [*context.flow_run.tags, f"pr-{pr}"]
    context.client.update_flow_run(flow_run_id=context.flow_run.id, tags=tags)
    context.flow_run.tags = tags


def flow_result(flow: Flow, plan: str, report: RunReport) -> RunReport | State:
    """The run's final state, named for what happened: a failed run is Failed with why as its message (carrying
    the report, so the UI shows it failed without a traceback), a gate refusal is Cancelled named `Refused` with
    the refusal sentence as its message (and an artifact saying why: not a success, and nothing ran), a preview
    is Completed named `Previewed`. The report is also kept for the run (tasks.kept), for a CLI whose Prefect
    server went away."""
    keep(report)
    document = report.document or {}
    results = document.get("results", [])
    if report.final == Outcome.FAILED:
        return Failed(message=failure_reason(report), data=report)
    if report.final == Outcome.SKIPPED:
        sentence = next((line for line in reversed(report.lines) if line.startswith("Refusing to execute: ")),
                        "Refusing to execute.")
        record_refusal(flow, plan_target(plan), f"{flow.flow_name}: {plan}", sentence)
        return Cancelled(name="Refused", message=sentence, data=report)
    if not document.get("executed", True):
        return Completed(name="Previewed", message=f"{len(results)} steps previewed; nothing changed", data=report)
    return report

