"""What the apply and rollback flows share: the gate and the Prefect implementations of a run's interfaces."""

import hashlib
import os
from dataclasses import replace

from prefect.client.schemas.objects import State
from prefect.states import Failed

from core.conventions import Flow, repository_path
from core.gate import GateDecision, GateRequirement, short
from core.lifecycle.ports import Execution
from core.plan import Plan
from core.report import RunReport
from core.vocabulary import Outcome
from tasks.gate import recheck_label, verify_label
from tasks.kube import TaskCluster
from tasks.lock import TaskLock

MAX_PARALLEL_STEPS = int(os.environ.get("INFRA_MAX_PARALLEL_STEPS", "4"))
"""kubectl calls on different workloads run side by side, this many at a time (each is one process)."""


def gate_requirement(flow: str, plan: str, pr: int | None, repository: str | None,
                     require_approval: bool) -> GateRequirement | None:
    """What the gate must check; `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO,
    and `require_approval` also asks for an approving review of the PR's head by someone with write access."""
    if pr is None:
        return None
    return GateRequirement(flow=flow, pr=pr, plan_path=repository_path(plan), repository=repository,
                           require_approval=require_approval)


def pass_gate(requirement: GateRequirement, plan: Plan) -> GateDecision:
    """The label gate, plus: the plan about to run is, byte for byte, the file the PR carries at the head the
    gate saw (a local edit or a stale checkout must not ride on someone else's approval)."""
    decision = verify_label(requirement)
    if not decision.allowed:
        return decision
    data = plan.path.read_bytes()
    local = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    if local == decision.plan_blob_sha:
        return decision
    reason = (f"the plan file here (blob {short(local)}) is not the one PR #{requirement.pr} carries at "
              f"{short(decision.head_sha)} (blob {short(decision.plan_blob_sha)})")
    return replace(decision, allowed=False, reason=reason)


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
    requirement = gate_requirement(flow, plan, pr, repository, require_approval)
    if requirement is not None and head_sha is not None:
        requirement = replace(requirement, expected_head_sha=head_sha)
    return Execution(TaskCluster(), TaskGate(), TaskLock(lock_timeout_s), requirement)


def flow_result(report: RunReport) -> RunReport | State:
    """A failed run returns a Failed state carrying the report, so the UI shows it failed without a traceback."""
    if report.final != Outcome.FAILED:
        return report
    document = report.document or {}
    failed = sum(not result["ok"] for result in document.get("results", []))
    return Failed(message=f"{failed} of {len(document.get('results', []))} steps did not succeed; see the step table",
                  data=report)
