"""What the apply and rollback flows share: the gate's opening moves and the closing report."""

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.concurrency.sync import concurrency
from prefect.states import Failed

from core.apply import touched_workloads
from core.gate import GateDecision, GateRequirement, files_read_by, local_files_problem
from core.plan import Plan
from core.report import RunReport, StepResult, finished, refusal
from integrations.kubectl import Kubectl
from integrations.lease import LockTimeout, holder_identity, target_lock
from tasks.artifacts import record_results
from tasks.gate import report_to_pull_request, verify_label
from tasks.kube import rollout_steps, verify_all

DEFAULT_PLAN = "ops/plans/infra-scale/prod/plan.yaml"
REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
PREVIEW_GATE_NOTE = "label check not required in preview"
MAX_PARALLEL_STEPS = int(os.environ.get("INFRA_MAX_PARALLEL_STEPS", "4"))
"""kubectl calls on different workloads run side by side, this many at a time (each is one process)."""


def repository_path(plan: str) -> str:
    """The plan's path inside the repository, as GitHub names it (relative to the working directory)."""
    path = Path(plan)
    if path.is_absolute():
        path = path.resolve().relative_to(Path.cwd().resolve()) if path.resolve().is_relative_to(Path.cwd()) else path
    return PurePosixPath(*path.parts).as_posix().removeprefix("./")


def kubectl_for(plan: Plan) -> Kubectl:
    """kubectl for the plan's cluster: `KUBECTL`/`KUBECONFIG` from the environment, the plan's context, and
    the plan's directory as working directory so relative manifests resolve as they did in the preview."""
    timeout = float(os.environ.get("INFRA_KUBECTL_TIMEOUT", "60"))
    return Kubectl(context=plan.context, cwd=plan.directory.resolve(), timeout_s=timeout)


def log_lines(lines: list[str]) -> None:
    logger = get_run_logger()
    for line in lines:
        logger.info(line)


def close_run(flow: str, plan: Plan, results: list[StepResult], executed: bool, lines: list[str],
              requirement: GateRequirement | None) -> RunReport | State:
    """Artifacts always; the PR comment and label removal after an execution. A failed run returns a Failed
    state carrying the report, so the UI shows it as failed without a traceback."""
    log_lines(lines)
    notes = [line.removeprefix("note: ") for line in lines if line.startswith("note: ")]
    markdown = record_results(flow, plan, results, executed, notes)
    if executed and requirement is not None:
        warning = report_to_pull_request(requirement, markdown)
        if warning:
            lines = [*lines, f"note: {warning}"]
    report = finished(results, plan.namespace, executed, lines)
    get_run_logger().info("%s", report.final)
    if report.final == "failed":
        failed = sum(not result.ok for result in results)
        return Failed(message=f"{failed} of {len(results)} steps did not succeed; see the step table", data=report)
    return report


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


def gated_execution(flow: str, plan: Plan, requirement: GateRequirement | None, kubectl: Kubectl,
                    lock_timeout_s: float,
                    locked: Callable[[GateRequirement, GateDecision], RunReport | State]) -> RunReport | State:
    """Gates 2 and 3, then the target's lock: `locked` runs only if all pass, and only while the lock is held."""
    if requirement is None:
        return refusal("--execute needs --pr=<number> (or PRNUM)")
    if requirement.repository is not None and not REPOSITORY.match(requirement.repository):
        return refusal(f"repository {requirement.repository!r} is not owner/name")
    decision = pass_gate(requirement, plan)
    if not decision.allowed:
        return refusal(decision.reason)
    holder = holder_identity(f"infra-{flow} PR #{requirement.pr}")
    slot = target_slot_name(plan)
    try:
        with concurrency(slot, occupy=1, timeout_seconds=lock_timeout_s, strict=False), \
                target_lock(kubectl, plan.namespace, holder, lock_timeout_s):
            return locked(requirement, decision)
    except LockTimeout as error:
        return refusal(str(error))
    except TimeoutError:
        return refusal(f"Prefect concurrency limit {slot} had no free slot for {lock_timeout_s:g}s")


def target_slot_name(plan: Plan) -> str:
    """The target's Prefect global concurrency limit (deployments/work_pools.py creates it with one slot).

    The Lease is the lock that holds across machines and servers; the limit makes a target's runs visible and
    pausable in the Prefect UI (set it to 0 and new runs wait). Where it does not exist, it is skipped.
    """
    return f"infra-target-{plan.target or plan.namespace}"


def verify_rollouts(plan: Plan, kubectl: Kubectl, step_numbers: list[int], first_number: int,
                    timeout_s: float) -> list[StepResult]:
    """`rollout status` for every workload whose replicas or template the given steps changed."""
    steps = rollout_steps(touched_workloads(plan, step_numbers), first_number, timeout_s)
    return verify_all(plan.namespace, kubectl, steps, timeout_s)
