"""infra-rollback: reverse what infra-apply did, once the PR carries `rollback-plan`."""

from dataclasses import replace
from functools import partial

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.task_runners import ThreadPoolTaskRunner

from core.apply import group_of
from core.gate import GateDecision, GateRequirement
from core.plan import Plan
from core.record import ApplyRecord, RollbackRecord, now
from core.report import RunReport, StepResult, refusal
from core.reversal import reversals
from core.steps import SEED_FALLBACK_NOTE, seed_rollback_steps
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
from integrations.kubectl import Kubectl
from tasks.gate import recheck_label
from tasks.kube import capture_objects, run_steps
from tasks.plan import build_steps, load_plan
from tasks.preview import run_preview
from tasks.records import find_record_for_preview, load_record, save_record

DRIFT_ERROR = "drifted: changed since apply; skipped (rerun with --force to overwrite)"
NOTHING_TO_DO = "nothing to roll back: every object is as it was before apply"
NEVER_APPLIED = "nothing to roll back: none of the plan's changes is live, so it was never applied"


@flow(name="infra-rollback", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_STEPS))  # type: ignore[arg-type]
def infra_rollback(plan: str = DEFAULT_PLAN, pr: int | None = None, execute: bool = False, force: bool = False,
                   rollout_timeout_s: float = 120, lock_timeout_s: float = 300,
                   repository: str | None = None, require_approval: bool = False) -> RunReport | State:
    """Preview by default; with `execute`, a PR number and a passing gate: restore exactly what apply captured.

    Only steps that ran are reversed, last first. A step whose object changed since apply is reported as
    drifted and left alone unless `force`. Plans applied by the old scripts (no record) get the seed's rollback.
    `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO; `require_approval`
    also asks for an approving review of the head SHA (Atlantis's apply requirement).
    """
    loaded = load_plan(plan)
    requirement = gate_requirement("rollback", plan, pr, repository, require_approval)
    kubectl = kubectl_for(loaded)
    record, where = find_record_for_preview(loaded, kubectl)
    steps, notes = build_steps(loaded, "rollback", record)
    previewed = run_preview(loaded, steps, [where, *notes])
    if not execute:
        return close_run("rollback", loaded, previewed, False, [f"note: {PREVIEW_GATE_NOTE}"], None)
    under_lock = partial(rollback_locked, loaded, kubectl, force=force, rollout_timeout_s=rollout_timeout_s)
    return gated_execution("rollback", loaded, requirement, kubectl, lock_timeout_s, under_lock)


def rollback_locked(plan: Plan, kubectl: Kubectl, requirement: GateRequirement, decision: GateDecision, *,
                    force: bool, rollout_timeout_s: float) -> RunReport | State:
    """Everything that happens while the target's lock is held: the record is read again under the lock."""
    record, where = load_record(plan, kubectl)
    if record is None:
        return _seed_rollback(plan, kubectl, requirement, decision, [f"note: {where}", f"note: {SEED_FALLBACK_NOTE}"])
    judged = reversals(plan, record, capture_objects(plan, kubectl))
    to_run = [r for r in judged if r.verdict == "reverse" or (r.verdict == "drifted" and force)]
    lines = [f"note: {where}"]
    if not to_run:
        lines.append(f"note: {NOTHING_TO_DO}" if all(r.verdict == "unchanged" for r in judged) else
                     "note: nothing reversed: the objects changed since apply")
    else:
        recheck = recheck_label(requirement, decision)
        if not recheck.allowed:
            return refusal(recheck.reason, lines)
    applied_by = {r.step.number: r.applied for r in judged}
    ran = {result.step.number: result for result in run_steps(
        plan.namespace, kubectl, [r.step for r in to_run], lambda step: group_of(plan, applied_by[step.number]),
        lambda result: None)}
    results = [ran.get(r.step.number) or StepResult(r.step, r.verdict, error=DRIFT_ERROR if r.verdict == "drifted"
                                                    else None) for r in judged]
    reversed_steps = [applied_by[number] for number, result in ran.items() if result.ok]
    results += verify_rollouts(plan, kubectl, reversed_steps, len(results) + 1, rollout_timeout_s)
    save_record(plan, kubectl, _rolled_back(record, results, applied_by))
    return close_run("rollback", plan, results, True, lines, requirement)


def _rolled_back(record: ApplyRecord, results: list[StepResult], applied_by: dict[int, int]) -> ApplyRecord:
    outcome = {str(applied_by[r.step.number]): r.status for r in results if r.step.number in applied_by}
    ok = all(result.ok for result in results)
    history = RollbackRecord(status="succeeded" if ok else "failed", started_at=record.rollback.started_at
                             if record.rollback and record.rollback.finished_at is None else now(),
                             finished_at=now(), steps=outcome)
    return replace(record, status="rolled-back" if ok else record.status, rollback=history)


def _seed_rollback(plan: Plan, kubectl: Kubectl, requirement: GateRequirement, decision: GateDecision,
                   lines: list[str]) -> RunReport | State:
    """No record (applied by the old scripts): the seed's steps, strictly in order, as the seed ran them."""
    steps = seed_rollback_steps(plan, capture_objects(plan, kubectl))
    if not steps:
        lines.append(f"note: {NEVER_APPLIED}")
        return close_run("rollback", plan, [], True, lines, requirement)
    recheck = recheck_label(requirement, decision)
    if not recheck.allowed:
        return refusal(recheck.reason, lines)
    results = run_steps(plan.namespace, kubectl, steps, lambda step: "seed order", lambda result: None)
    return close_run("rollback", plan, results, True, lines, requirement)
