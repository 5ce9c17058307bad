"""Apply: load -> gate -> lock -> capture -> perform -> verify -> record -> report.

Every transition is recorded: the record is saved before the first step and after each wave of steps (the
boundaries a resume depends on), so a crash never leaves a finished step only in the local mirror.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.apply import (
    ApplyPreparation,
    Binding,
    finished_record,
    group_of,
    prepare_apply,
    results_with_states,
    step_finished,
    with_after_states,
)
from core.conventions import Flow
from core.errors import PermanentError, TemporaryError
from core.expiry import ScheduleFailed, parse_time, rolls_back_at, shown_time, will_roll_back
from core.gate import GateDecision, GateRequirement, files_read_by
from core.lifecycle.common import Lifecycle, preview_report, recheck, verify_rollouts
from core.lifecycle.ports import Cluster, Execution, Expiries, Held, Records, Refused, Saving
from core.lifecycle.rollback import Rollback, live_plan_objects, stamped
from core.plan import Plan
from core.policy import PolicyMode, findings_for, refusal
from core.record import RECORD_ANNOTATION, ApplyRecord, Saved, file_digest, plan_digest, record_name
from core.record_check import RecordCorrupt
from core.report import RunReport, StepResult
from core.rollout import paused_in_the_way
from core.state import Objects as LiveObjects
from core.steps import apply_steps
from core.vocabulary import RecordStatus, StepStatus, StepType

NO_ACTIONS = "the plan has no actions: nothing to apply, and no record"


class Progress:
    """The record of a run in progress: saved before the first change; then each wave's results are written
    into it and saved while the next wave runs. Every save is preceded by a check of the lock (a run that lost
    it stops before its next write) and is a compare-and-swap on the revision the previous save left. Saves land
    in order: each waits for the one before.

    A wave's save need not land before the next wave starts: a crash can always come between a step and the
    save after it, so a resume and a rollback judge a step the record still has pending by the live object
    (core.apply, core.reversal), and the prior states they need are saved before the first change."""

    def __init__(self, records: Records, plan: Plan, record: ApplyRecord, held: Held) -> None:
        self.records, self.plan, self.record, self.held = records, plan, record, held
        self.revision = record.revision
        self.digest: str | None = None
        """The digest of the record as last saved (what a scheduled rollback names)."""
        self.notes: list[str] = []
        self.saving: Saving | None = None
        self.save(record)

    def save(self, record: ApplyRecord) -> None:
        """Save now (the first and the last save)."""
        self.settle()
        self.held.check()
        self.record = replace(record, revision=self.revision)
        self._saved(self.records.save(self.plan, self.record))

    def settle(self) -> None:
        """Wait for the save under way, if any (raising what it raised)."""
        saving, self.saving = self.saving, None
        if saving is not None:
            self._saved(saving())

    def wave_done(self, results: Sequence[StepResult]) -> None:
        record = self.record
        for result in results:
            record = step_finished(record, result)
        self.settle()
        self.held.check()
        self.record = replace(record, revision=self.revision)
        self.saving = self.records.start_save(self.plan, self.record)

    def _saved(self, saved: Saved) -> None:
        self.revision, self.digest = saved.revision, saved.digest
        self.record = replace(self.record, revision=saved.revision)
        self._note(saved.note)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        """A run that stops on an error leaves no save under way behind it: the lock is released next, and a
        late save could land on the record of the run that takes the lock over. Its own failure is not raised
        over the error that stopped the run."""
        if error is not None:
            with suppress(Exception):
                self.settle()

    def _note(self, note: str | None) -> None:
        if note and f"note: {note}" not in self.notes:
            self.notes.append(f"note: {note}")


@dataclass(frozen=True)
class Apply(Lifecycle):
    """infra-apply: capture each object's prior state, apply the plan, verify the rollouts, record it all.

    Without `execution` this is the preview. Steps on different workloads run side by side, one workload's in
    plan order. With `atomic`, a failed run reverses what it applied through the same `Rollback`.
    """

    flow = Flow.APPLY
    atomic: bool = False
    policy: PolicyMode = PolicyMode.WARN
    live: Callable[[Plan], LiveObjects] | None = None
    """The preview's read of the plan's objects (one batched `kubectl get`), for live → planned values."""
    expiries: Expiries | None = None
    """Where the rollback of a time-boxed plan (`expires`) is scheduled; without it such a plan is refused."""

    def preview(self, plan: Plan) -> RunReport:
        timed = [will_roll_back(plan.expires)] if plan.expires is not None else []
        if self.live is None:
            return preview_report(Flow.APPLY, plan, apply_steps(plan), timed, self.reporter)
        try:
            live = self.live(plan)
        except (TemporaryError, PermanentError) as error:
            note = f"the cluster could not be read ({error}): planned values only"
            return preview_report(Flow.APPLY, plan, apply_steps(plan), [*timed, note], self.reporter)
        return preview_report(Flow.APPLY, plan, apply_steps(plan), [*timed, *policy_notes(plan, live, self.policy)],
                              self.reporter, live)

    def locked(self, plan: Plan, execution: Execution, requirement: GateRequirement, decision: GateDecision,
               held: Held) -> RunReport:
        cluster = execution.cluster
        try:
            loading = self.records.start_load(plan)  # read while the objects are
            live = cluster.capture(plan)
            existing, _ = loading()
        except RecordCorrupt as corrupt:
            return self.reporter.fail(Flow.APPLY, plan, str(corrupt), [], requirement)
        paused = paused_in_the_way(plan, live)
        if paused:
            raise Refused("; ".join(paused))
        prepared = prepare_apply(plan, live, existing, self._binding(plan, requirement, decision))
        lines = [f"note: {prepared.note}"] if prepared.note else []
        if not plan.actions:  # a record needs a step: a rollback refuses one without
            held.let_go()
            return self.reporter.report(Flow.APPLY, plan, [], True, [*lines, f"note: {NO_ACTIONS}"], requirement)
        if prepared.problem:  # a stop before any change: no step ran, so no step row carries it
            return self.reporter.fail(Flow.APPLY, plan, f"{prepared.problem}; nothing was changed", lines,
                                      requirement)
        existed = live_plan_objects(plan, live)
        to_change = list(dict.fromkeys(step.obj for step in prepared.to_run if step.obj is not None))
        if plan.expires is not None:
            self._check_schedulable(plan, lines)
        if prepared.to_run:
            findings = findings_for(plan, live)
            lines += [f"note: policy: {finding}" for finding in findings]  # notes reach the PR comment
            blocked = refusal(findings, self.policy)
            if blocked:
                raise Refused(blocked, lines)
            recheck(execution, requirement, decision, lines)
            held.check()  # the stamp is the run's first write
            unstamped = _stamp(cluster, plan, [ref for ref in to_change if ref in existed])
            if unstamped:
                return self.reporter.fail(Flow.APPLY, plan, f"{unstamped}; nothing was changed", lines, requirement)
        with Progress(self.records, plan, prepared.record, held) as progress:
            results = self._perform(plan, cluster, prepared, existed, progress, lines)
        held.let_go()  # the record is final: the lock is released while the report is published
        lines += self._reschedule(plan, requirement, progress)
        return self.reporter.report(Flow.APPLY, plan, results, True, [*lines, *progress.notes], requirement)

    def _check_schedulable(self, plan: Plan, lines: Sequence[str]) -> None:
        """A time-boxed change whose rollback cannot be scheduled would not end when promised: refuse it before
        the first change."""
        problem = "no Prefect deployment can be reached" if self.expiries is None else self.expiries.problem(plan)
        if problem:
            raise Refused(f"expires: the rollback at expiry cannot be scheduled ({problem}); a time-boxed change "
                          "is applied only when its rollback is scheduled", lines)

    def _reschedule(self, plan: Plan, requirement: GateRequirement, progress: Progress) -> list[str]:
        """After an executed apply of a time-boxed plan, or of one an earlier time-boxed apply of the PR scheduled a
        rollback for, the runs scheduled before are cancelled (this apply replaced them; a run left behind would
        be refused anyway, the record's digest having changed) and, for a time-boxed plan that succeeded, its
        rollback is scheduled; `note:` lines."""
        record = progress.record
        if self.expiries is None or (plan.expires is None and not any(link.expires_at for link in record.earlier)):
            return []
        lines = self.expiries.cancel(plan, "replaced by a new apply of the plan")
        if record.expires_at is None or record.status != RecordStatus.SUCCEEDED or progress.digest is None:
            return lines
        at = parse_time(record.expires_at)
        try:
            scheduled = self.expiries.schedule(plan, requirement.pr, requirement.repository, progress.digest, at)
        except ScheduleFailed as failed:
            return [*lines, f"note: warning: the rollback at {shown_time(at)} could not be scheduled ({failed}): "
                            "label the PR rollback-plan by then, or apply again"]
        return [*lines, f"note: {rolls_back_at(scheduled.at, scheduled.url or scheduled.run_id)}"]

    def _binding(self, plan: Plan, requirement: GateRequirement, decision: GateDecision) -> Binding:
        """What this apply's record is bound to: the PR, the pinned head, the digest of every file read, the run."""
        files = {path: file_digest(data) for path, data in files_read_by(plan, requirement.plan_path).items()}
        return Binding(plan_digest(plan), requirement.pr, decision.head_sha, self.records.run_id(), files)

    def _perform(self, plan: Plan, cluster: Cluster, prepared: ApplyPreparation, existed: Mapping[str, Any],
                 progress: Progress, lines: list[str]) -> list[StepResult]:
        """Run the steps, stamp the objects they created, read the after-states, verify the rollouts (with
        `atomic`, undo a failed run) and save the finished record; `lines` gets the notes."""
        ran = cluster.run_steps(plan, prepared.to_run, lambda step: group_of(plan, step.number), progress.wave_done,
                                progress.held.proceed)
        after = cluster.capture(plan)
        carrying = set(stamped(plan, after))  # the HPAs the plan describes carry the stamp from their creation on
        progress.held.check()
        unstamped = _stamp(cluster, plan, [result.step.obj for result in ran
                                           if result.ok and result.step.obj is not None
                                           and result.step.obj not in existed and result.step.obj not in carrying])
        lines += [f"note: {unstamped}; the record still names what the run created"] if unstamped else []
        results = sorted([*prepared.settled, *ran], key=lambda result: result.step.number)
        record = with_after_states(progress.record, plan, after)
        results = results_with_states(results, record)
        changed = [plan.actions[stored.number - 1] for stored in record.steps if stored.status == StepStatus.SUCCEEDED]
        results += verify_rollouts(cluster, plan, changed, len(results) + 1, self.rollout_timeout_s, after)
        if all(result.ok for result in results):
            record = finished_record(record, RecordStatus.SUCCEEDED)
            if plan.expires is not None:
                record = replace(record, expires_at=shown_time(plan.expires.resolve(datetime.now(UTC))))
        elif self.atomic:
            undone = self._rollback().reverse(plan, cluster, replace(record, earlier=()), progress.held,
                                              len(results) + 1, StepType.ROLLBACK)
            results += undone.results
            lines += undone.lines
            record = _after_atomic(record, finished_record(undone.record, undone.status))
        else:
            record = finished_record(record, RecordStatus.FAILED)
        progress.save(record)
        return results

    def _rollback(self) -> Rollback:
        """--atomic: the same Rollback as infra-rollback, never forced (drifted objects are left alone)."""
        return Rollback(self.plan_path, self.load, self.records, self.reporter, self.execution,
                        rollout_timeout_s=self.rollout_timeout_s)


def policy_notes(plan: Plan, live: LiveObjects, mode: PolicyMode) -> list[str]:
    """The preview's policy findings (the same the apply computes right before its first change), and, with
    `block`, that executing would refuse."""
    findings = findings_for(plan, live)
    blocked = refusal(findings, mode)
    return [*(f"policy: {finding}" for finding in findings),
            *([f"executing would refuse: {blocked}"] if blocked else [])]


def _after_atomic(record: ApplyRecord, undone: ApplyRecord) -> ApplyRecord:
    """--atomic undid this apply only: when it was fully undone the chain's earlier apply is the record again
    (still applied, still to be rolled back), else this apply keeps the chain behind it."""
    if undone.status == RecordStatus.ROLLED_BACK and record.earlier:
        return replace(record.earlier[-1], earlier=record.earlier[:-1], revision=record.revision)
    return replace(undone, earlier=record.earlier)


def _stamp(cluster: Cluster, plan: Plan, refs: Sequence[str]) -> str | None:
    """Mark the objects as changed by this plan's apply (RECORD_ANNOTATION): the objects that exist before the
    first change, and the HPAs the run created from manifest files right after it (those the plan describes
    carry it from their creation on); a rollback that then finds no record refuses rather than guess. Returns
    why the stamp failed (its transient failures already retried), if it did."""
    if not refs:
        return None
    unique, name = list(dict.fromkeys(refs)), record_name(plan)
    try:
        cluster.stamp(plan, unique, name)
    except TemporaryError as error:
        attempts = getattr(error, "attempts", 1)
        why = f"still failing after {attempts} attempts ({error})" if attempts > 1 else f"failed ({error})"
    except PermanentError as error:
        why = f"refused by the cluster ({error})"
    else:
        return None
    return f"could not stamp {', '.join(unique)} with {RECORD_ANNOTATION}={name}: {why}"
