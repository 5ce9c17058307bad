"""Rollback: load -> gate -> lock -> capture -> judge drift -> perform the undo -> verify -> record -> report.

`reverse` is the whole undo of an apply record (capture, drift verdicts, undo steps, rollout checks, the record's
new status). infra-rollback runs it after its gate; `Apply --atomic` runs the very same on what it applied.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.conventions import Flow
from core.errors import RecordUnreadable
from core.gate import GateDecision, GateRequirement
from core.k8s import Kind
from core.lifecycle.common import Lifecycle, preview_report, recheck, verify_rollouts
from core.lifecycle.ports import Cluster, Execution, Expiries, Held, Loading, Objects, Refused
from core.plan import ApplyHpa, Plan
from core.record import ANY_REVISION, RECORD_ANNOTATION, ApplyRecord, RollbackRecord, now, plan_digest, record_name
from core.record_check import RecordCorrupt
from core.report import RunReport, StepResult
from core.reversal import Reversal, already_rolled_back, plan_changed_note, plan_steps, reversals
from core.state import find
from core.steps import SEED_FALLBACK_NOTE, seed_rollback_steps
from core.vocabulary import RecordStatus, StepStatus, StepType, Verdict

DRIFT_ERROR = "drifted: changed since apply; skipped (rerun with --force to overwrite)"
NOTHING_TO_DO = "nothing to roll back: every object is as it was before apply"
NOTHING_REVERSED = "nothing reversed: the objects changed since apply"
NEVER_APPLIED = "nothing to roll back: none of the plan's changes is live, so it was never applied"
SEED_FALLBACK_CHOSEN = ("--seed-fallback: the Node scripts' (v0) rollback was asked for, although infra-apply "
                        "stamped objects")
SEED_ORDER = "seed order"
"""The one group of a seed rollback: its steps run strictly in order, as the seed ran them."""


def live_plan_objects(plan: Plan, live: Objects) -> dict[str, Mapping[str, Any]]:
    """The live objects the plan's actions change, by ref (`deployment/web`, `hpa/web`), in plan order."""
    found: dict[str, Mapping[str, Any]] = {}
    for action in plan.actions:
        kind, name, ref = ((Kind.HPA, action.name, f"{Kind.HPA.resource}/{action.name}")
                           if isinstance(action, ApplyHpa) else
                           (action.workload.kind, action.workload.name, action.workload.ref))
        item = find(live, kind, name)
        if item is not None:
            found.setdefault(ref, item)
    return found


def stamped(plan: Plan, live: Objects) -> list[str]:
    """The plan's live objects that infra-apply stamped with this plan's record name."""
    name = record_name(plan)
    return [ref for ref, item in live_plan_objects(plan, live).items()
            if (item.get("metadata", {}).get("annotations") or {}).get(RECORD_ANNOTATION) == name]


def bound_to_pr(record: ApplyRecord, pr: int, where: str) -> None:
    """A record is rolled back only by the PR whose apply wrote it."""
    if record.pr is not None and record.pr != pr:
        raise RecordCorrupt(where, f"it is the record of PR #{record.pr}'s apply, not of PR #{pr}",
                            f"nothing was changed: roll back from PR #{record.pr}")


def refusal_without_record(plan: Plan, refs: Sequence[str]) -> str:
    """Why a rollback with no record but stamped objects refuses, and the two ways out."""
    return (f"no apply record for this plan, but {', '.join(refs)} carry {RECORD_ANNOTATION}={record_name(plan)}: "
            "infra-apply changed them, and the Node scripts' (v0) rollback would only guess what it did. Roll back "
            "from a saved record with --from-record FILE (e.g. a copy of the plan's .record.json), or run the Node "
            "scripts' rollback anyway with --seed-fallback")


@dataclass(frozen=True)
class Undo:
    """What reversing a record did: a result per reversal (run or judged), rollout checks, the updated record."""

    results: list[StepResult]
    record: ApplyRecord
    lines: list[str]
    status: RecordStatus
    """`rolled-back` only if every undo step and rollout check succeeded, else `rollback-failed`."""


def drift_notes(judged: Sequence[Reversal], name: str) -> list[str]:
    """Objects another plan's apply stamped since: drifted (left alone unless forced)."""
    return [f"note: {r.step.obj} carries {RECORD_ANNOTATION}={r.stamped_by}, not {name}: another plan changed it "
            "since this apply; drifted" for r in judged if r.stamped_by is not None]


def _not_run(reversal: Reversal) -> StepResult:
    if reversal.verdict == Verdict.DRIFTED:
        return StepResult(reversal.step, StepStatus.DRIFTED, error=DRIFT_ERROR)
    return StepResult(reversal.step, StepStatus.UNCHANGED)


def _nothing_reversed(judged: Sequence[Reversal]) -> str:
    """Why a rollback ran no step: everything is as before the apply, or what is not was changed by others."""
    return NOTHING_TO_DO if all(r.verdict == Verdict.UNCHANGED for r in judged) else NOTHING_REVERSED


def _run_reversals(cluster: Cluster, plan: Plan, judged: Sequence[Reversal], to_run: Sequence[Reversal],
                   held: Held) -> dict[int, StepResult]:
    """Run the undo steps `to_run`, each workload's in order, checking the lock between waves; by step number."""
    group_by = {r.step.number: r.group for r in judged}
    return {result.step.number: result for result in cluster.run_steps(
        plan, [r.step for r in to_run], lambda step: group_by[step.number], lambda wave: held.check(),
        held.proceed)}


def failure_note(failed: Sequence[StepResult]) -> str:
    """What a person must do after an incomplete rollback: the record still holds every before-state."""
    names = ", ".join(f"{result.step.number} ({result.step.obj}: {result.status})" for result in failed)
    force = " (with --force to overwrite drifted objects)" if any(
        result.status == StepStatus.DRIFTED for result in failed) else ""
    return (f"note: rollback incomplete, the cluster is only partly restored: step(s) {names} did not succeed. "
            f"Fix the cause, then run infra-rollback (label the PR rollback-plan){force} to finish from the record")


def rolled_back(record: ApplyRecord, results: Sequence[StepResult], applied_by: dict[int, str],
                status: RecordStatus) -> ApplyRecord:
    """The record after a rollback, with each apply step's undo status in the rollback history."""
    outcome = {applied_by[r.step.number]: r.status.value for r in results if r.step.number in applied_by}
    ok = status == RecordStatus.ROLLED_BACK
    resumed = record.rollback is not None and record.rollback.finished_at is None
    history = RollbackRecord(status=RecordStatus.SUCCEEDED if ok else RecordStatus.FAILED,
                             started_at=record.rollback.started_at if resumed and record.rollback else now(),
                             finished_at=now(), steps=outcome)
    return replace(record, status=status, rollback=history)


ALREADY_ROLLED_BACK = "already rolled back: nothing to do"


@dataclass(frozen=True)
class Rollback(Lifecycle):
    """infra-rollback: restore exactly what apply captured, last step first, only for steps that ran.

    Without `execution` this is the preview. A step whose object changed since apply is `drifted` and left
    alone unless `force`. Plans applied by the old scripts (no record, no stamp) get the seed's rollback; with
    no record but objects stamped by infra-apply, the run refuses unless given `from_record` (a record file,
    used instead of the stored record) or `seed_fallback`.
    """

    flow = Flow.ROLLBACK
    force: bool = False
    from_record: str | None = None
    seed_fallback: bool = False
    expiries: Expiries | None = None
    """Where a time-boxed apply scheduled its rollback: rolling back its record cancels that run first."""

    def preview(self, plan: Plan) -> RunReport:
        record, where = self.records.load_for_preview(plan)
        if record is not None and record.status == RecordStatus.ROLLED_BACK:
            return preview_report(Flow.ROLLBACK, plan, [], [where, ALREADY_ROLLED_BACK], self.reporter)
        steps, notes = plan_steps(plan, Flow.ROLLBACK, record, plan_digest(plan))
        return preview_report(Flow.ROLLBACK, plan, steps, [where, *notes], self.reporter)

    def locked(self, plan: Plan, execution: Execution, requirement: GateRequirement, decision: GateDecision,
               held: Held) -> RunReport:
        """The record is read again under the lock (while the objects are captured): it is the truth about what
        apply did."""
        try:
            loading = self._start_record(plan)
            live = execution.cluster.capture(plan)
            record, where = loading()
            if record is not None:
                bound_to_pr(record, requirement.pr, where)
        except RecordCorrupt as corrupt:
            return self.reporter.fail(Flow.ROLLBACK, plan, str(corrupt), [], requirement)
        lines = [f"note: {where}"]
        if self.expiries is not None and record is not None and record.expires_at is not None:
            lines += self.expiries.cancel(plan, "a rollback ran first")
        stale = already_rolled_back(record) if record is not None else None
        if stale is not None:
            held.let_go()
            return self.reporter.report(Flow.ROLLBACK, plan, [], True, [*lines, f"note: {stale}"], requirement)
        changed = plan_changed_note(record, plan_digest(plan)) if record is not None else None
        lines += [f"note: {changed}"] if changed else []
        if record is None:
            refs = stamped(plan, live)
            if refs and not self.seed_fallback:
                raise Refused(refusal_without_record(plan, refs), lines)
            lines.append(f"note: {SEED_FALLBACK_CHOSEN if refs else SEED_FALLBACK_NOTE}")
            return self._seed_rollback(plan, execution, requirement, decision, held, lines, live)
        undone = self.reverse(plan, execution.cluster, record, held, live=live,
                              before_change=lambda: recheck(execution, requirement, decision, lines))
        held.check()
        saved = self.records.save(plan, undone.record)
        lines += [f"note: {saved.note}"] if saved.note else []
        held.let_go()  # the record is final: the lock is released while the report is published
        return self.reporter.report(Flow.ROLLBACK, plan, undone.results, True, [*lines, *undone.lines], requirement)

    def _start_record(self, plan: Plan) -> Loading:
        """The record given as a file, else the stored one, read while the caller goes on; with `seed_fallback`,
        an unreadable stored record counts as none."""
        if self.from_record is not None:
            record = replace(self.records.from_file(plan, Path(self.from_record)), revision=ANY_REVISION)
            where = f"record read from {self.from_record} (--from-record)"
            return lambda: (record, where)
        loading = self.records.start_load(plan)

        def stored() -> tuple[ApplyRecord | None, str]:
            try:
                return loading()
            except RecordUnreadable as unreadable:
                if not self.seed_fallback:
                    raise
                return None, f"{unreadable}; ignored (--seed-fallback)"

        return stored

    def reverse(self, plan: Plan, cluster: Cluster, record: ApplyRecord, held: Held, first_number: int = 1,
                step_type: StepType = StepType.ACTION, before_change: Callable[[], None] = lambda: None,
                live: Objects | None = None) -> Undo:
        """Capture (unless given the objects `live`, captured under the lock), judge each recorded step against
        the live object, undo those as apply left them (and the drifted ones when forced), verify the rollouts,
        and return the record with the rollback's outcome."""
        live = cluster.capture(plan) if live is None else live
        judged = reversals(plan, record, live, first_number, step_type, self.force)
        to_run = [r for r in judged if r.verdict == Verdict.REVERSE or (r.verdict == Verdict.DRIFTED and self.force)]
        lines = drift_notes(judged, record_name(plan))
        if not to_run:
            lines.append(f"note: {_nothing_reversed(judged)}")
        else:
            before_change()
        applied_by = {r.step.number: r.applied for r in judged}
        ran = _run_reversals(cluster, plan, judged, to_run, held)
        results = [ran.get(r.step.number) or _not_run(r) for r in judged]
        restored = [result.step.landing.action for result in ran.values() if result.ok and result.step.landing]
        results += verify_rollouts(cluster, plan, restored, first_number + len(results), self.rollout_timeout_s)
        failed = [result for result in results if not result.ok]
        if failed:
            lines.append(failure_note(failed))
        status = RecordStatus.ROLLBACK_FAILED if failed else RecordStatus.ROLLED_BACK
        return Undo(results, rolled_back(record, results, applied_by, status), lines, status)

    def _seed_rollback(self, plan: Plan, execution: Execution, requirement: GateRequirement,
                       decision: GateDecision, held: Held, lines: list[str], live: Objects) -> RunReport:
        """No record (applied by the old scripts): the seed's steps, strictly in order, as the seed ran them."""
        steps = seed_rollback_steps(plan, live)
        if not steps:
            return self.reporter.report(Flow.ROLLBACK, plan, [], True, [*lines, f"note: {NEVER_APPLIED}"],
                                        requirement)
        recheck(execution, requirement, decision, lines)
        results = execution.cluster.run_steps(plan, steps, lambda step: SEED_ORDER, lambda wave: held.check(),
                                              held.proceed)
        held.let_go()
        return self.reporter.report(Flow.ROLLBACK, plan, results, True, lines, requirement)
