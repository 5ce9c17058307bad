"""Apply as a state machine over the record: prepare (capture, resume, refuse), then one transition per step.

Shaped after Helm's action objects: `prepare_apply` decides everything that can be decided before a change,
`step_finished` records each transition (pending -> succeeded/failed/skipped) as it happens.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.conventions import LABELS, Flow
from core.plan import Action, ApplyHpa, Plan, ScaleWorkload
from core.record import MAX_CHAIN, ApplyRecord, StepRecord, now
from core.record_check import action_data, recorded_action
from core.report import StepResult
from core.state import Objects, captured, comparable, expected_after, state_of
from core.steps import Step, apply_steps
from core.vocabulary import RecordStatus, StepStatus, StepType

_DONE = (StepStatus.SUCCEEDED, StepStatus.UNCHANGED)
"""Step states whose change is live: resuming skips them, and their after-state is recorded."""


ROLLBACK_UNFINISHED = ("the last rollback of this plan did not finish: run infra-rollback (label the PR "
                       f"{LABELS[Flow.ROLLBACK]}) to restore the recorded state before applying again")
"""A fresh capture now would record the half-restored objects as "before" and lose the true prior state."""


@dataclass(frozen=True)
class ApplyPreparation:
    record: ApplyRecord
    to_run: list[Step]
    settled: list[StepResult]
    """Steps not to run: already done by an interrupted earlier run, or by a finished one."""
    problem: str | None = None
    """Set when nothing may run at all (e.g. replicas of an HPA-managed workload)."""
    note: str | None = None


def group_of(plan: Plan, step_number: int) -> str:
    """Steps on one workload (and its HPA) keep plan order; different workloads may run side by side."""
    return plan.actions[step_number - 1].workload.ref


def touched_workloads(actions: Sequence[Action]) -> list[str]:
    """Workloads whose replicas or pod template the given actions changed, in their order, each once."""
    return list(dict.fromkeys(action.workload.ref for action in actions if not isinstance(action, ApplyHpa)))


def hpa_conflicts(plan: Plan, objects: Objects) -> list[str]:
    """Replica changes an HPA would fight: the workload has an HPA and the plan does not change that HPA."""
    changed_hpas = {action.workload.ref for action in plan.actions if isinstance(action, ApplyHpa)}
    problems = []
    for action in plan.actions:
        if isinstance(action, ScaleWorkload) and action.workload.ref not in changed_hpas:
            state = state_of(action, objects)
            if state and state.get("hpa"):
                problems.append(f"{action.workload.ref} is managed by hpa/{state['hpa']}: change its HPA bounds "
                                "in the plan (apply_hpa) instead of its replicas")
    return problems


@dataclass(frozen=True)
class Binding:
    """What produced an apply, stored in its record: the PR, the head the gate pinned, the digest of the plan and
    of every other file the run read, and the run's id."""

    digest: str
    pr: int | None
    head_sha: str | None
    run_id: str
    files: Mapping[str, str]


def _fresh(plan: Plan, objects: Objects, binding: Binding, steps: Sequence[Step],
           earlier: tuple[ApplyRecord, ...] = (), revision: str | None = None) -> ApplyRecord:
    recorded = tuple(
        StepRecord(number=step.number, action=step.action or "", obj=step.obj or "",
                   command=step.command(plan.namespace), before=captured(action, objects), spec=action_data(action))
        for step, action in zip(steps, plan.actions, strict=True)
    )
    return ApplyRecord(plan=plan.path.as_posix(), namespace=plan.namespace, target=plan.target, digest=binding.digest,
                       status=RecordStatus.RUNNING, started_at=now(), steps=recorded, pr=binding.pr,
                       head_sha=binding.head_sha, run_id=binding.run_id, files=dict(binding.files), earlier=earlier,
                       revision=revision)


def not_as_applied(record: ApplyRecord, objects: Objects) -> list[str]:
    """The objects of a `succeeded` record that are not as it says apply left them (a record is never taken for
    the cluster's state without reading the cluster)."""
    return [stored.obj for stored, action in zip(record.steps, (recorded_action(step.spec) for step in record.steps),
                                                   strict=True)
            if stored.status in _DONE and stored.after is not None
            and comparable(action, state_of(action, objects)) != comparable(action, stored.after)]


def preconditioned(plan: Plan, objects: Objects) -> list[Step]:
    """The plan's steps, each scale carrying the replicas the run read as `--current-replicas`: a scale that
    raced another writer fails with kubectl's precondition error instead of overwriting it, as the rollback's do
    (core.reversal). A later scale of the same workload is preconditioned on the earlier one's count.

    A scale after the plan's own HPA step for its workload carries none: that HPA may move the replicas within
    its new bounds before the scale lands (as the controller does at once for a count outside them), and the
    run cannot know when. The rollback likewise undoes what such an HPA raised only after deleting it."""
    counts: dict[str, int | None] = {}
    steps = []
    for step, action in zip(apply_steps(plan), plan.actions, strict=True):
        ref = action.workload.ref
        if isinstance(action, ApplyHpa):
            counts[ref] = None
        elif isinstance(action, ScaleWorkload):
            current = counts[ref] if ref in counts else _live_replicas(action, objects)
            if current is not None:
                step = replace(step, args=(*step.args, f"--current-replicas={current}"))
            counts[ref] = action.replicas if ref not in counts or counts[ref] is not None else None
        steps.append(step)
    return steps


def _live_replicas(action: ScaleWorkload, objects: Objects) -> int | None:
    state = state_of(action, objects)
    return None if state is None else int(state["replicas"])


@dataclass(frozen=True)
class _Start:
    """Where an apply starts from: the record it writes, whether it resumes that record's run, and notes."""

    record: ApplyRecord
    resumable: bool
    notes: tuple[str, ...] = ()


def _chained(plan: Plan, objects: Objects, existing: ApplyRecord, binding: Binding,
             steps: Sequence[Step]) -> ApplyRecord | str:
    """A new apply of an edited plan on the PR that applied an earlier version: a new record whose prior states
    are the objects as they are now, chained after the earlier apply (which keeps its own). The reason when the
    chain is full."""
    earlier = (*existing.earlier, replace(existing, earlier=(), revision=None))
    if len(earlier) >= MAX_CHAIN:
        return (f"PR #{binding.pr} already applied {len(earlier)} versions of this plan: roll it back (label the PR "
                f"{LABELS[Flow.ROLLBACK]}) before applying another")
    return _fresh(plan, objects, binding, steps, earlier, existing.revision)


def _not_as_left(missing: Sequence[str]) -> str:
    one = len(missing) == 1
    return (f"the record says this plan was applied, but {', '.join(missing)} {'is' if one else 'are'} not as it "
            f"left {'it' if one else 'them'}: applying")


def _start(plan: Plan, objects: Objects, existing: ApplyRecord | None, binding: Binding,
           steps: Sequence[Step]) -> _Start | ApplyPreparation:
    """The record this apply writes, or the preparation that ends it before any step: a plan already applied
    (nothing to do), an unfinished rollback, a full chain."""
    if existing is None:
        return _Start(_fresh(plan, objects, binding, steps), resumable=False)
    previous = existing.status if existing.digest == binding.digest else None
    if previous in (RecordStatus.RUNNING, RecordStatus.FAILED):
        return _Start(existing, resumable=True)
    if previous == RecordStatus.ROLLBACK_FAILED:
        return ApplyPreparation(existing, [], [], problem=ROLLBACK_UNFINISHED)
    missing = not_as_applied(existing, objects) if previous == RecordStatus.SUCCEEDED else []
    if previous == RecordStatus.SUCCEEDED and not missing:
        settled = [StepResult(step, StepStatus.UNCHANGED) for step in steps]
        return ApplyPreparation(existing, [], settled, note="this plan was already applied: nothing to do")
    notes: tuple[str, ...] = (_not_as_left(missing),) if missing else ()
    chains = bool(previous is None or missing) and existing.pr is not None and existing.pr == binding.pr
    if not chains or existing.status == RecordStatus.ROLLED_BACK:
        return _Start(_fresh(plan, objects, binding, steps, revision=existing.revision), False, notes)
    chained = _chained(plan, objects, existing, binding, steps)
    if isinstance(chained, str):
        return ApplyPreparation(existing, [], [], problem=chained)
    if previous is None:
        notes += (f"the plan changed since PR #{binding.pr} applied it (sha256 {existing.digest[:12]} -> "
                  f"{binding.digest[:12]}): this apply keeps its own prior states after the earlier one's",)
    return _Start(chained, False, notes)


def _resumed(plan: Plan, objects: Objects, record: ApplyRecord,
             steps: Sequence[Step]) -> tuple[ApplyRecord, list[Step], list[StepResult]]:
    """Split a resumed run's steps: those done by the interrupted run, or whose object is already as the plan
    wants (marked `unchanged`, never applied twice), and those still to run."""
    to_run, settled = [], []
    for step, action in zip(steps, plan.actions, strict=True):
        stored = record.step(step.number)
        live = comparable(action, state_of(action, objects))
        wanted = comparable(action, stored.after or expected_after(action, stored.before))
        if stored.status in _DONE or (wanted is not None and live == wanted):
            settled.append(StepResult(step, StepStatus.UNCHANGED, before=stored.before, after=stored.after))
            kept = StepStatus.SUCCEEDED if stored.status == StepStatus.SUCCEEDED else StepStatus.UNCHANGED
            record = record.with_step(replace(stored, status=kept, error=None))
        else:
            to_run.append(step)
    return record, to_run, settled


def prepare_apply(plan: Plan, objects: Objects, existing: ApplyRecord | None, binding: Binding) -> ApplyPreparation:
    """Capture before-states into a new record, or resume an interrupted run of the same plan.

    Resuming keeps the first run's before-states (they are the truth about "before") and marks steps whose
    object is already as the plan wants as `unchanged`, so nothing is applied twice. An edited plan applied again
    by the same PR, or a `succeeded` one whose objects are not as it left them, chains a new record after the
    earlier apply's (whose prior states stay the truth about "before"); a record of another PR, or one rolled
    back, is replaced (its compare-and-swap revision kept). Scale steps are preconditioned on the replicas read
    now (`preconditioned`).
    """
    steps = preconditioned(plan, objects)
    start = _start(plan, objects, existing, binding, steps)
    if isinstance(start, ApplyPreparation):
        return start
    record = replace(start.record, status=RecordStatus.RUNNING, finished_at=None, pr=binding.pr or start.record.pr,
                     head_sha=binding.head_sha or start.record.head_sha)
    conflicts = hpa_conflicts(plan, objects)
    if conflicts:
        return ApplyPreparation(record, [], [], problem="; ".join(conflicts))
    if not start.resumable:
        return ApplyPreparation(record, steps, [], note="; ".join(start.notes) or None)
    record, to_run, settled = _resumed(plan, objects, record, steps)
    notes = (*start.notes, f"resuming an interrupted apply: {len(settled)} step(s) already done")
    return ApplyPreparation(record, to_run, settled, note="; ".join(notes))


def step_finished(record: ApplyRecord, result: StepResult) -> ApplyRecord:
    """Record one step's transition out of `pending`."""
    stored = record.step(result.step.number)
    finished = now()
    return record.with_step(replace(stored, status=result.status, attempts=result.attempts,
                                     started_at=stored.started_at or finished, finished_at=finished,
                                     duration_ms=round(result.duration_s * 1000, 1), error=result.error))


def with_after_states(record: ApplyRecord, plan: Plan, objects: Objects) -> ApplyRecord:
    """Store what apply left for every step that ran: rollback later compares the live object with it."""
    for action, stored in zip(plan.actions, record.steps, strict=True):
        if stored.status in _DONE:
            record = record.with_step(replace(stored, after=state_of(action, objects)))
    return record


def finished_record(record: ApplyRecord, status: RecordStatus) -> ApplyRecord:
    return replace(record, status=status, finished_at=now())


def results_with_states(results: list[StepResult], record: ApplyRecord) -> list[StepResult]:
    """Attach each step's before/after from the record, for the artifact table and the JSON summary."""
    def states(result: StepResult) -> dict[str, Any]:
        if result.step.type != StepType.ACTION:
            return {}
        stored = record.step(result.step.number)
        return {"before": stored.before, "after": stored.after}

    return [replace(result, **states(result)) for result in results]
