"""What the apply and rollback flows share: the gate and the Prefect implementations of a run's interfaces."""

import os
from dataclasses import replace

from prefect.client.schemas.objects import State
from prefect.states import Failed

from core.conventions import Flow, repository_path
from core.gate import GateDecision, GateRequirement, files_read_by, local_files_problem
from core.lifecycle.ports import Execution
from core.plan import Plan
from core.report import RunReport
from core.vocabulary import Outcome
from tasks.gate import recheck_label, verify_label
from tasks.kube import TaskCluster
from tasks.lock import TaskLock
from tasks.reporter import LastReport

MAX_PARALLEL_STEPS = int(os.environ.get("INFRA_MAX_PARALLEL_STEPS", "4"))
"""kubectl calls on different workloads run side by side, this many at a time (each is one process)."""


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
    else's approval)."""
    read = files_read_by(plan, requirement.plan_path)
    requirement = replace(requirement, read_paths=tuple(read))
    decision = verify_label(requirement)
    if not decision.allowed:
        return decision
    local = {requirement.plan_path: plan.path.read_bytes(),
             **{path: file.read_bytes() if file.is_file() else None for path, file in read.items()}}
    problem = local_files_problem(decision, requirement, local)
    return decision if problem is None else replace(decision, allowed=False, reason=problem)


class TaskGate:
    """The lifecycle's gate: the label check (a task) with the plan-blob comparison, and its recheck (a task)."""

    def check(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        return pass_gate(requirement, plan)

    def recheck(self, requirement: GateRequirement, first: GateDecision) -> GateDecision:
        return recheck_label(requirement, first)


def execution(flow: Flow, plan: str, pr: int | None, repository: str | None, require_approval: bool,
              head_sha: str | None, lock_timeout_s: float) -> Execution:
    """What an executing run needs: the cluster, the gate (with the head SHA the labeled event carried, when
    given) and the target's lock."""
    requirement = gate_requirement(flow, plan, pr, repository, require_approval, head_sha)
    return Execution(TaskCluster(), TaskGate(), TaskLock(lock_timeout_s), requirement)


def flow_result(report: RunReport) -> RunReport | State:
    """A failed run returns a Failed state carrying the report, so the UI shows it failed without a traceback.
    The report is also kept in the process (`LastReport`), for a CLI whose Prefect server went away."""
    LastReport.keep(report)
    if report.final != Outcome.FAILED:
        return report
    document = report.document or {}
    failed = sum(not result["ok"] for result in document.get("results", []))
    return Failed(message=f"{failed} of {len(document.get('results', []))} steps did not succeed; see the step table",
                  data=report)
