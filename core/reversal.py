"""Which steps a rollback runs: the exact reversal of an apply record, or the seed's fallback without one.

Reversal follows ARCHITECTURE.md: replicas go back with `--current-replicas` as a precondition (never
`rollout undo`, which reverts the template and not replicas); resources go back to the captured values; an HPA is
replaced by its captured self or deleted when the plan created it. Before each step the live object is compared
with what apply left: if someone changed it since, the step is `drifted` and skipped unless forced.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.conventions import Flow
from core.plan import Action, ApplyHpa, Plan, ScaleWorkload
from core.record import ApplyRecord, StepRecord
from core.state import Objects, comparable, expected_after, prior_object, state_of
from core.steps import SEED_FALLBACK_NOTE, Landing, Step, apply_steps, seed_rollback_steps
from core.vocabulary import StepStatus, StepType, Verdict

RECORD_NOTE = "rolling back from the apply record: exact prior state, reverse order, only steps that ran"


@dataclass(frozen=True)
class Reversal:
    """The undo of apply step `applied`: its kubectl call, and whether the live object still allows it."""

    applied: int
    step: Step
    verdict: Verdict


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


def reversals(plan: Plan, record: ApplyRecord, objects: Objects | None, first_number: int = 1,
              step_type: StepType = StepType.ACTION, force: bool = False) -> list[Reversal]:
    """Every apply step that has a captured before-state, last first, with its verdict against `objects`
    (all `reverse` when no live objects are given, as in a preview). With `force`, a drifted scale's
    `--current-replicas` precondition is the live count, so the undo overwrites the drift (and still fails if
    the count changes again in between)."""
    result: list[Reversal] = []
    for forward in reversed(apply_steps(plan)):
        stored = record.step(forward.number)
        action = plan.actions[forward.number - 1]
        if stored.before is None and not isinstance(action, ApplyHpa):
            continue  # the workload did not exist, so the step cannot have changed it
        live = state_of(action, objects) if objects is not None else None
        judged = Verdict.REVERSE if objects is None else verdict(action, stored, live)
        if force and judged == Verdict.DRIFTED and isinstance(action, ScaleWorkload) and live is not None:
            stored = replace(stored, after={**(stored.after or {}), "replicas": live["replicas"]})  # overwrite it
        args, stdin = undo_args(action, stored)
        step = Step(first_number + len(result), step_type, action.type, forward.obj, args, f"restored {forward.obj}",
                    stdin=stdin, landing=Landing(action, reverse=True, before=prior_object(action, stored.before),
                                    found=prior_object(action, stored.after)))
        result.append(Reversal(forward.number, step, judged))
        raised = _raised_replicas(plan, action, stored, objects) if isinstance(action, ApplyHpa) else None
        if raised is not None and isinstance(action, ApplyHpa):
            restore, current, raised_verdict = raised
            ref = action.workload.ref
            step = Step(first_number + len(result), step_type, action.type, ref,
                        ("scale", ref, f"--replicas={restore.replicas}", f"--current-replicas={current}"),
                        f"restored replicas of {ref} changed by hpa/{action.name}",
                        landing=Landing(restore, reverse=True, before={"replicas": restore.replicas},
                                        found={"replicas": current}))
            result.append(Reversal(forward.number, step, raised_verdict))
    return result


def _raised_replicas(plan: Plan, action: ApplyHpa, stored: StepRecord,
                     objects: Objects | None) -> tuple[ScaleWorkload, int, Verdict] | None:
    """The undo of replicas that an HPA created by the plan changed: the scale back to the count captured before
    apply, the live count it is preconditioned on, and its verdict. A count outside the HPA's bounds is not the
    HPA's doing (drifted). None when the HPA existed before, the record predates this capture, or a scale step of
    the plan restores the workload's replicas itself."""
    captured = (stored.before or {}).get("target_replicas")
    scaled = any(isinstance(other, ScaleWorkload) and other.workload == action.workload for other in plan.actions)
    if captured is None or prior_object(action, stored.before) is not None or scaled:
        return None
    restore = ScaleWorkload(action.workload, int(captured))
    spec = (stored.after or {}).get("spec") or {}
    bounds = action.bounds
    low = int(spec.get("minReplicas", bounds.min_replicas if bounds is not None else 1))
    high = int(spec.get("maxReplicas", bounds.max_replicas if bounds is not None else low))
    if objects is None:  # a preview: the HPA keeps at least its minimum
        return restore, max(restore.replicas, low), Verdict.REVERSE
    live = state_of(restore, objects)
    if live is None:
        return None
    current = int(live["replicas"])
    if current == restore.replicas:
        return restore, current, Verdict.UNCHANGED
    return restore, current, Verdict.REVERSE if low <= current <= high else Verdict.DRIFTED


def plan_steps(plan: Plan, flow: Flow, record: ApplyRecord | None = None) -> tuple[list[Step], list[str]]:
    """The steps `flow` (apply or rollback) would run for `plan`, and notes on where they came from.

    Without live objects a record-based rollback previews every recorded step; drift is judged at execution.
    """
    if flow == Flow.APPLY:
        return apply_steps(plan), []
    if record is None:
        return seed_rollback_steps(plan), [SEED_FALLBACK_NOTE]
    return [reversal.step for reversal in reversals(plan, record, None)], [RECORD_NOTE]
