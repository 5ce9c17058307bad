"""What the apply and rollback flows share: the gate and the Prefect implementations of a run's interfaces."""

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import github  # noqa: F401 - see below
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Cancelled, Completed, Failed

from core.conventions import DEFAULT_PLAN, Flow, repository_path
from core.errors import InputError
from core.expiry import rolls_back_in
from core.gate import GateDecision, GateRequirement, context_problem, files_read_by, local_files_problem
from core.lifecycle.ports import Execution
from core.plan import Plan
from core.report import RunReport, failure_reason
from core.vocabulary import Outcome, StepStatus
from integrations.kubeconfig import allowed_contexts
from tasks.artifacts import record_refusal
from tasks.gate import claim_label, put_label_back, recheck_label, report_status, verify_label
from tasks.kube import TaskCluster
from tasks.lock import TaskLock
from tasks.plan import parsed_plan
from tasks.reporter import LastReport, refusal_to_pull_request
from tasks.review import plan_problem

# PyGithub (the gate's client) is imported here, before a flow run starts, not inside the gate's task: there,
# with Prefect's event and log threads running, the same import held the gate for 0.2-0.3 s instead of 0.1 s.

MAX_PARALLEL_STEPS = int(os.environ.get("INFRA_MAX_PARALLEL_STEPS", "4"))
"""kubectl calls on different workloads run side by side, this many at a time (each is one process)."""
TASK_WORKERS = MAX_PARALLEL_STEPS + 1
"""The flows' task runner threads: the steps' calls, and one for the apply record's read or save, which run beside
them (core.lifecycle.apply) and must not hold back a step."""


def gate_requirement(flow: str, plan: str, pr: int | None, repository: str | None,
                     require_approval: bool, head_sha: str | None = None) -> GateRequirement | None:
    """What the gate must check. `repository` ("owner/name", from the triggering event) must be one this worker
    serves (GH_OWNER/GH_REPO or INFRA_REPOSITORIES); `require_approval` also asks for an approving review of the
    PR's head by someone with write access; `head_sha` (the event's pull_request.head.sha when the label was
    added) refuses a head that moved since."""
    if pr is None:
        return None
    return GateRequirement(flow=flow, pr=pr, plan_path=repository_path(plan), repository=repository,
                           require_approval=require_approval, expected_head_sha=head_sha)


def pass_gate(requirement: GateRequirement, plan: Plan) -> GateDecision:
    """The label gate, plus: the plan and every file it reads (manifests, hint files) are, byte for byte, the
    files the PR carries at the head the gate saw (a local edit or a stale checkout must not ride on someone
    else's approval). The bytes compared are those the plan was parsed from, kept in memory since: the disk is
    not read again, so a checkout that changes after the parse cannot pass other bytes off as the PR's."""
    read: dict[str, bytes | None] = {**files_read_by(plan, requirement.plan_path)}
    requirement = replace(requirement, read_paths=tuple(path for path in read if path != requirement.plan_path))
    decision = verify_label(requirement)
    if not decision.allowed:
        return decision
    problem = context_problem(plan.context, allowed_contexts()) or local_files_problem(decision, requirement, read)
    return decision if problem is None else replace(decision, allowed=False, reason=problem)


class TaskGate:
    """The lifecycle's gate: the label check (a task) with the plan-blob comparison, and its recheck (a task),
    after which the run claims the trigger label (removes it) before its first change. A passed gate marks its
    head `infra/<flow>: pending`; `settle_status` sets the outcome there, and puts a claimed label back when the
    run changed nothing."""

    def __init__(self, require_plan: bool = False) -> None:
        self.require_plan = require_plan
        self.pending: tuple[GateRequirement, str] | None = None
        self.claimed = False
        self.head_sha: str | None = None
        """The head the check saw, refused or not (a refusal is reported there)."""
        self.decision: GateDecision | None = None
        """The decision that let the run go on (its provenance: who labeled, when, at which head)."""

    def check(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        decision = pass_gate(requirement, plan)
        if decision.allowed and self.require_plan and decision.head_sha:
            problem = plan_problem(requirement, decision.head_sha)
            decision = decision if problem is None else replace(decision, allowed=False, reason=problem)
        self.head_sha = decision.head_sha
        self.decision = decision if decision.allowed else None
        if decision.allowed and decision.head_sha:
            self.pending = (requirement, decision.head_sha)
            report_status(requirement, decision.head_sha, "pending", f"infra-{requirement.flow} is running")
        return decision

    def recheck(self, requirement: GateRequirement, first: GateDecision) -> GateDecision:
        decision = recheck_label(requirement, first)
        if not decision.allowed or self.claimed or not first.head_sha:
            return decision
        taken = claim_label(requirement, first.head_sha)
        if taken is not None:
            return replace(decision, allowed=False, reason=taken)
        self.claimed = True
        return decision


def execution(flow: Flow, plan: str, pr: int | None, repository: str | None, require_approval: bool,
              head_sha: str | None, lock_timeout_s: float, require_plan: bool = False) -> Execution:
    """What an executing run needs: the cluster, the gate (with the head SHA the labeled event carried, when
    given; with `require_plan`, also `infra/plan` success on that head) and the target's lock."""
    requirement = gate_requirement(flow, plan, pr, repository, require_approval, head_sha)
    return Execution(TaskCluster(), TaskGate(require_plan), TaskLock(lock_timeout_s), requirement)


def admission(execution: Execution | None) -> TaskGate | None:
    """The gate of an executing run, whose decision the reporter shows as the run's provenance."""
    gate = execution.gate if execution is not None else None
    return gate if isinstance(gate, TaskGate) else None


def settle_status(execution: Execution | None, report: RunReport) -> RunReport:
    """After an executing run: a refusal (by the gate, the recheck or the lock: nothing was done) is said on the
    PR, once per head and reason, with `infra/<flow>` failure; after a passed gate, a label the run claimed goes
    back when it changed nothing (no step ran), then `infra/<flow>` success or failure on the head it saw, with
    one line why."""
    gate = execution.gate if execution is not None else None
    if execution is None or execution.requirement is None or not isinstance(gate, TaskGate):
        return report
    if report.final == Outcome.SKIPPED:
        reason = report.lines[-1].removeprefix("Refusing to execute: ").removesuffix(".") if report.lines else ""
        head = gate.pending[1] if gate.pending is not None else gate.head_sha
        warnings = refusal_to_pull_request(execution.requirement, head, reason)
        return replace(report, lines=(*report.lines[:-1], *(f"note: {w}" for w in warnings), *report.lines[-1:]))
    if gate.pending is None:
        return report
    requirement, sha = gate.pending
    results = (report.document or {}).get("results", [])
    changed = any(result.get("status") in (StepStatus.SUCCEEDED, StepStatus.FAILED) for result in results)
    if gate.claimed and not changed:
        unlabeled = put_label_back(requirement)
        report = replace(report, lines=(*report.lines, f"note: {unlabeled}")) if unlabeled else report
    if report.final == Outcome.SUCCEEDED:
        timed = rolls_back_in(report.lines)
        state, description = "success", f"{len(results)} steps succeeded" + (f"; {timed}" if timed else "")
    else:
        state, description = "failure", failure_reason(report)
    warning = report_status(requirement, sha, state, description)
    return replace(report, lines=(*report.lines, f"note: {warning}")) if warning else report


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
    is Completed named `Previewed`. The report is also kept in the process (`LastReport`), for a CLI whose
    Prefect server went away."""
    LastReport.keep(report)
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

