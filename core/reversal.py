"""Which steps a rollback runs: the exact reversal of an apply record, or the seed's fallback without one.

Reversal follows ARCHITECTURE.md: replicas go back with `--current-replicas` as a precondition (never
`rollout undo`, which reverts the template and not replicas); resources go back to the captured values; an HPA is
replaced by its captured self or deleted when the plan created it. Before each step the live object is compared
with what apply left: if someone changed it since, the step is `drifted` and skipped unless forced.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.conventions import Flow
from core.k8s import Kind
from core.plan import Action, ApplyHpa, Plan, ScaleWorkload, UpdateResources
from core.record import RECORD_ANNOTATION, ApplyRecord, StepRecord, record_name
from core.record_check import checked_actions, ref_of
from core.state import Objects, comparable, expected_after, find, prior_object, state_of
from core.steps import SEED_FALLBACK_NOTE, Landing, Step, apply_steps, seed_rollback_steps
from core.vocabulary import RecordStatus, StepStatus, StepType, Verdict

RECORD_NOTE = "rolling back from the apply record: exact prior state, reverse order, only steps that ran"


@dataclass(frozen=True)
class Reversal:
    """The undo of apply step `applied`: its kubectl call, and whether the live object still allows it."""

    applied: str
    """The apply step undone: its number, or `<apply>.<number>` for an earlier apply of the chain."""
    step: Step
    verdict: Verdict
    group: str
    """The workload whose steps keep their order (undo steps on different workloads may run side by side)."""
    stamped_by: str | None = None
    """Another record's name, when the object carries its stamp: another plan changed it since (drifted)."""


def verdict(action: Action, stored: StepRecord, live: Mapping[str, Any] | None) -> Verdict:
    """`unchanged` when the object is as it was before apply, `reverse` when it is as apply left it,
    `drifted` when it is neither (someone changed it since)."""
    now = comparable(action, live)
    if now == comparable(action, stored.before):
        return Verdict.UNCHANGED
    after = stored.after if stored.after is not None else expected_after(action, stored.before)
    if after is None:
        ran = stored.status in (StepStatus.SUCCEEDED, StepStatus.UNCHANGED, StepStatus.PENDING)
        return Verdict.REVERSE if ran else Verdict.DRIFTED
    return Verdict.REVERSE if now == comparable(action, after) else Verdict.DRIFTED


def _applied_state(action: Action, stored: StepRecord) -> dict[str, Any]:
    return stored.after or expected_after(action, stored.before) or {}


def undo_args(action: Action, stored: StepRecord) -> tuple[tuple[str, ...], str | None]:
    """The kubectl arguments (and stdin) that put the object back to `stored.before`.

    Only the record is needed: a `reverse` verdict means the live object is as apply left it, and each command
    carries a precondition (`--current-replicas`, a JSON-patch `test` of the container name) that fails
    rather than overwrite an object that changed in between.
    """
    before = stored.before or {}
    if isinstance(action, ScaleWorkload):
        applied = _applied_state(action, stored).get("replicas")
        return ("scale", action.workload.ref, f"--replicas={before['replicas']}", f"--current-replicas={applied}"), None
    if isinstance(action, ApplyHpa):
        if prior_object(action, stored.before) is None:
            return ("delete", "hpa", action.name), None
        return ("replace", "-f", "-"), json.dumps(before["manifest"])
    patch: list[dict[str, Any]] = []
    for name, resources in before.get("containers", {}).items():
        path = f"/spec/template/spec/containers/{before['indexes'][name]}"
        patch += [{"op": "test", "path": f"{path}/name", "value": name},
                  {"op": "add", "path": f"{path}/resources", "value": resources}]
    return ("patch", action.workload.ref, "--type=json", f"-p={json.dumps(patch, separators=(',', ':'))}"), None


def _stamped_by(action: Action, objects: Objects) -> str | None:
    """The record named by the stamp (RECORD_ANNOTATION) of the object `action` changes, if it carries one."""
    kind, name = ((Kind.HPA, action.name) if isinstance(action, ApplyHpa)
                  else (action.workload.kind, action.workload.name))
    item = find(objects, kind, name)
    annotations = (item or {}).get("metadata", {}).get("annotations") or {}
    stamp = annotations.get(RECORD_ANNOTATION)
    return stamp if isinstance(stamp, str) else None


def _key(action: Action) -> tuple[str, str, str | None]:
    return action.type, ref_of(action), action.container if isinstance(action, UpdateResources) else None


def reversals(plan: Plan, record: ApplyRecord, objects: Objects | None, first_number: int = 1,
              step_type: StepType = StepType.ACTION, force: bool = False, where: str = "the record") -> list[Reversal]:
    """Every recorded step that has a captured before-state, the newest apply of the chain first and each one's
    last step first, with its verdict against `objects` (all `reverse` when no live objects are given, as in a
    preview). The steps come from the record (checked first, core.record_check), never from the plan as it is
    now. An older apply's step is judged against the state the newer ones' undo leaves, so a chain 2 -> 4 -> 5
    restores 2 in two preconditioned steps. An object stamped with another record's name is drifted (another
    plan changed it since). With `force`, a drifted scale's `--current-replicas` precondition is the live count,
    so the undo overwrites the drift (and still fails if the count changes again in between)."""
    result: list[Reversal] = []
    projected: dict[tuple[str, str, str | None], Any] = {}
    ours = record_name(plan)

    def live_state(action: Action) -> Any:
        key = _key(action)
        if key in projected:
            return projected[key]
        return state_of(action, objects) if objects is not None else None

    for actions, link in checked_actions(record, plan.namespace, where):
        for stored, action in reversed(list(zip(link.steps, actions, strict=True))):
            if stored.before is None and not isinstance(action, ApplyHpa):
                continue  # the workload did not exist, so the step cannot have changed it
            live = live_state(action)
            judged, foreign = _judged(action, stored, live, objects, ours)
            if force and judged == Verdict.DRIFTED and isinstance(action, ScaleWorkload) and live is not None:
                stored = replace(stored, after={**(stored.after or {}), "replicas": live["replicas"]})  # overwrite
            undoes = judged != Verdict.DRIFTED or force
            projected[_key(action)] = prior_object(action, stored.before) if undoes else live
            args, stdin = undo_args(action, stored)
            obj = ref_of(action)
            step = Step(first_number + len(result), step_type, action.type, obj, args, f"restored {obj}",
                        stdin=stdin, landing=Landing(action, reverse=True, before=prior_object(action, stored.before),
                                                     found=prior_object(action, stored.after)))
            label = _applied_label(record, link, stored)
            result.append(Reversal(label, step, judged, action.workload.ref, foreign))
            raised = (_raised_replicas(actions, action, stored, live_state, objects is None)
                      if isinstance(action, ApplyHpa) else None)
            if raised is not None and isinstance(action, ApplyHpa):
                result.append(_raised_reversal(action, raised, label, first_number + len(result), step_type))
                restore, _, raised_verdict = raised
                if raised_verdict != Verdict.DRIFTED:
                    projected[_key(restore)] = {"replicas": restore.replicas}
    return result


def _judged(action: Action, stored: StepRecord, live: Any, objects: Objects | None,
            ours: str) -> tuple[Verdict, str | None]:
    """The verdict on undoing `stored`, and the other record whose stamp the object carries (then drifted);
    always `reverse` in a preview (no live objects)."""
    if objects is None:
        return Verdict.REVERSE, None
    stamp = _stamped_by(action, objects)
    if stamp is not None and stamp != ours:
        return Verdict.DRIFTED, stamp
    return verdict(action, stored, live), None


def _raised_reversal(action: ApplyHpa, raised: tuple[ScaleWorkload, int, Verdict], applied: str, number: int,
                     step_type: StepType) -> Reversal:
    """The scale step that undoes the replicas an HPA created by the plan raised (see `_raised_replicas`)."""
    restore, current, raised_verdict = raised
    ref = action.workload.ref
    step = Step(number, step_type, action.type, ref,
                ("scale", ref, f"--replicas={restore.replicas}", f"--current-replicas={current}"),
                f"restored replicas of {ref} changed by hpa/{action.name}",
                landing=Landing(restore, reverse=True, before={"replicas": restore.replicas},
                                found={"replicas": current}))
    return Reversal(applied, step, raised_verdict, ref, None)


def _applied_label(record: ApplyRecord, link: ApplyRecord, stored: StepRecord) -> str:
    """The apply step a reversal undoes, for the rollback history: its number, prefixed with the apply's place
    in the chain (1 the first) when the apply is an earlier one."""
    if link is record:
        return str(stored.number)
    return f"{record.earlier.index(link) + 1}.{stored.number}"


def _raised_replicas(actions: Sequence[Action], action: ApplyHpa, stored: StepRecord,
                     live_state: Callable[[Action], Any],
                     previewing: bool) -> tuple[ScaleWorkload, int, Verdict] | None:
    """The undo of replicas that an HPA created by the plan changed: the scale back to the count captured before
    apply, the live count it is preconditioned on, and its verdict. A count outside the HPA's bounds is not the
    HPA's doing (drifted). None when the HPA existed before, the record predates this capture, or a scale step of
    the same apply restores the workload's replicas itself."""
    captured = (stored.before or {}).get("target_replicas")
    scaled = any(isinstance(other, ScaleWorkload) and other.workload == action.workload for other in actions)
    if captured is None or prior_object(action, stored.before) is not None or scaled:
        return None
    restore = ScaleWorkload(action.workload, int(captured))
    spec = (stored.after or {}).get("spec") or {}
    bounds = action.bounds
    low = int(spec.get("minReplicas", bounds.min_replicas if bounds is not None else 1))
    high = int(spec.get("maxReplicas", bounds.max_replicas if bounds is not None else low))
    live = live_state(restore)
    if live is None:  # a preview (the HPA keeps at least its minimum), or the workload is gone
        return (restore, max(restore.replicas, low), Verdict.REVERSE) if previewing else None
    current = int(live["replicas"])
    if current == restore.replicas:
        return restore, current, Verdict.UNCHANGED
    return restore, current, Verdict.REVERSE if low <= current <= high else Verdict.DRIFTED


def plan_changed_note(record: ApplyRecord, digest: str) -> str | None:
    """Said when the plan is not the one last applied: the rollback reverses what the record says was applied."""
    if record.digest == digest:
        return None
    return (f"the plan changed since it was applied (sha256 {record.digest[:12]} -> {digest[:12]}): reversing "
            "what was applied, from the record")


def already_rolled_back(record: ApplyRecord) -> str | None:
    """A record whose rollback finished reverses nothing again (the objects may be another plan's by now)."""
    if record.status != RecordStatus.ROLLED_BACK:
        return None
    when = f" at {record.rollback.finished_at}" if record.rollback and record.rollback.finished_at else ""
    return f"this apply record was already rolled back{when}: nothing to reverse"


def plan_steps(plan: Plan, flow: Flow, record: ApplyRecord | None = None,
               digest: str | None = None) -> tuple[list[Step], list[str]]:
    """The steps `flow` (apply or rollback) would run for `plan`, and notes on where they came from.

    Without live objects a record-based rollback previews every recorded step; drift is judged at execution.
    """
    if flow == Flow.APPLY:
        return apply_steps(plan), []
    if record is None:
        return seed_rollback_steps(plan), [SEED_FALLBACK_NOTE]
    stale = already_rolled_back(record)
    if stale is not None:
        return [], [stale]
    changed = plan_changed_note(record, digest) if digest is not None else None
    steps = [reversal.step for reversal in reversals(plan, record, None)]
    return steps, [RECORD_NOTE, *([changed] if changed else [])]
