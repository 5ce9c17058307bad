"""infra-apply: execute a plan once its PR carries `execute-plan`, recording each object's prior state."""

import time
from functools import partial

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.task_runners import ThreadPoolTaskRunner

from core.apply import (
    finished_record,
    group_of,
    prepare_apply,
    results_with_states,
    step_finished,
    with_after_states,
)
from core.gate import GateDecision, GateRequirement
from core.plan import Plan
from core.record import ApplyRecord, plan_digest
from core.report import RunReport, StepResult, refusal
from core.reversal import reversals
from flows.shared import (
    DEFAULT_PLAN,
    MAX_PARALLEL_STEPS,
    PREVIEW_GATE_NOTE,
    close_run,
    gate_requirement,
    gated_execution,
    kubectl_for,
    verify_rollouts,
)
from integrations import records
from integrations.files import write_atomically
from integrations.kubectl import Kubectl
from tasks.gate import recheck_label
from tasks.kube import capture_objects, run_steps
from tasks.plan import build_steps, load_plan
from tasks.preview import run_preview
from tasks.records import load_record, save_record

MIRROR_EVERY_S = 1.0
CLUSTER_RECORD_EVERY_S = 10.0
"""How stale the record may get mid-run. Resuming never trusts it alone (it compares with the live objects), so
these only bound what a crash hides from a reader; each cluster write is one more kubectl process."""


@flow(name="infra-apply", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_STEPS))  # type: ignore[arg-type]
def infra_apply(plan: str = DEFAULT_PLAN, pr: int | None = None, execute: bool = False, atomic: bool = False,
                rollout_timeout_s: float = 120, lock_timeout_s: float = 300,
                repository: str | None = None, require_approval: bool = False) -> RunReport | State:
    """Preview by default; with `execute`, a PR number and a passing gate: capture, apply, verify, record.

    Steps on different workloads run side by side ($INFRA_MAX_PARALLEL_STEPS kubectl calls at a time, default 4),
    and those that differ only in their object share one call; a transient kubectl failure is retried, a
    permanent one fails its step at once. With `atomic`, a failure rolls back the
    steps already applied. `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO;
    `require_approval` also asks for an approving review of the head SHA (Atlantis's apply requirement).
    """
    loaded = load_plan(plan)
    requirement = gate_requirement("apply", plan, pr, repository, require_approval)
    steps, notes = build_steps(loaded, "apply")
    previewed = run_preview(loaded, steps, notes)
    if not execute:
        return close_run("apply", loaded, previewed, False, [f"note: {PREVIEW_GATE_NOTE}"], None)
    kubectl = kubectl_for(loaded)
    under_lock = partial(apply_locked, loaded, kubectl, atomic=atomic, rollout_timeout_s=rollout_timeout_s)
    return gated_execution("apply", loaded, requirement, kubectl, lock_timeout_s, under_lock)


def apply_locked(plan: Plan, kubectl: Kubectl, requirement: GateRequirement, decision: GateDecision, *,
                 atomic: bool, rollout_timeout_s: float) -> RunReport | State:
    """Everything that happens while the target's lock is held."""
    existing, _ = load_record(plan, kubectl)
    prepared = prepare_apply(plan, capture_objects(plan, kubectl), existing, plan_digest(plan), requirement.pr,
                             decision.head_sha)
    lines = [f"note: {prepared.note}"] if prepared.note else []
    if prepared.problem:
        failed = [StepResult(step, "failed", error=prepared.problem) for step in build_steps(plan, "apply")[0]]
        return close_run("apply", plan, failed, True, lines, requirement)
    if prepared.to_run:
        recheck = recheck_label(requirement, decision)
        if not recheck.allowed:
            return refusal(recheck.reason, lines)
    record = prepared.record
    save_record(plan, kubectl, record)
    mirrored_at = stored_at = time.monotonic()

    def on_result(result: StepResult) -> None:
        nonlocal record, mirrored_at, stored_at
        record = step_finished(record, result)
        now = time.monotonic()
        if now - stored_at >= CLUSTER_RECORD_EVERY_S:
            save_record(plan, kubectl, record)
            mirrored_at = stored_at = now
        elif now - mirrored_at >= MIRROR_EVERY_S:
            write_atomically(records.mirror_path(plan), record.to_json())
            mirrored_at = now

    results = prepared.settled + run_steps(plan.namespace, kubectl, prepared.to_run,
                                           lambda step: group_of(plan, step.number), on_result)
    results.sort(key=lambda result: result.step.number)
    record = with_after_states(record, plan, capture_objects(plan, kubectl))
    results = results_with_states(results, record)
    changed = [stored.number for stored in record.steps if stored.status == "succeeded"]
    results += verify_rollouts(plan, kubectl, changed, len(results) + 1, rollout_timeout_s)
    ok = all(result.ok for result in results)
    if not ok and atomic:
        results += _roll_back_applied(plan, kubectl, record, len(results) + 1)
        record = finished_record(record, False, status="rolled-back")
    else:
        record = finished_record(record, ok)
    save_record(plan, kubectl, record)
    return close_run("apply", plan, results, True, lines, requirement)


def _roll_back_applied(plan: Plan, kubectl: Kubectl, record: ApplyRecord, first_number: int) -> list[StepResult]:
    """--atomic: reverse what this run applied, with the same logic as infra-rollback."""
    objects = capture_objects(plan, kubectl)
    undo = [reversal for reversal in reversals(plan, record, objects, first_number, "rollback")
            if reversal.verdict == "reverse"]
    applied_by = {reversal.step.number: reversal.applied for reversal in undo}
    return run_steps(plan.namespace, kubectl, [reversal.step for reversal in undo],
                     lambda step: group_of(plan, applied_by[step.number]), lambda result: None)
