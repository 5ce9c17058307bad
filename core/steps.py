"""Steps: the kubectl argument lists a plan turns into, forward (apply) and, for plans without records, reverse.

A step is data, not a call: preview prints it, execution runs it, and records store it, so all three always
agree on what "the command" was.
"""

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.hints import CommandHint, Hint, ManifestHint
from core.k8s import Kind
from core.plan import Action, ApplyHpa, HpaBounds, Plan, ScaleWorkload, UpdateResources, Workload
from core.record import RECORD_ANNOTATION, record_name
from core.state import Objects, in_effect
from core.vocabulary import ActionType, StepType

SEED_FALLBACK_NOTE = (
    "no execution record for this plan: using the Node scripts' (v0) rollback (hints, rollout undo, delete hpa); "
    "rollout undo does not restore replicas (kubernetes/kubernetes#25236)"
)


@dataclass(frozen=True)
class Landing:
    """What the live object looks like once a step's write landed (core.landed judges it): the plan's action,
    forward, or reversed back to the state recorded before apply."""

    action: Action
    reverse: bool = False
    before: Any = None
    found: Any = None
    """An undo's expected starting point: the state apply left (recorded), or the live state a forced undo
    overwrites; shown as the `before` of its change rows."""


@dataclass(frozen=True)
class Step:
    """One kubectl invocation in the plan's namespace.

    `type` and `action` are the seed's result fields; `obj` is the object the step changes (steps on one object
    keep plan order, steps on different objects may run side by side); `summary` becomes the result's note.
    """

    number: int
    type: StepType
    action: str | None
    obj: str | None
    args: tuple[str, ...]
    summary: str
    stdin: str | None = None
    notes: tuple[str, ...] = field(default=())
    landing: Landing | None = None
    """Set for writes whose effect can be read back: a write whose answer was lost is confirmed, not re-sent."""
    stdin_file: str | None = None
    """The file (relative to the plan) whose validated object `stdin` carries: kubectl reads `-f -`, never the
    file, and the command names the file in place of `-`."""

    def command(self, namespace: str) -> str:
        """The command as the output contract prints it: `kubectl -n <ns> <args>`."""
        args = self.args
        if self.stdin_file is not None:
            args = tuple(self.stdin_file if arg == "-" and args[i - 1] == "-f" else arg for i, arg in enumerate(args))
        return f"kubectl -n {namespace} {shlex.join(args)}"


def hpa_manifest(name: str, namespace: str, workload: Workload, bounds: HpaBounds,
                 annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler for `workload` within `bounds`."""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": Kind(workload.kind).api_version, "kind": workload.kind, "name": workload.name},
        "minReplicas": bounds.min_replicas,
        "maxReplicas": bounds.max_replicas,
    }
    if bounds.cpu_utilization is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": bounds.cpu_utilization}}}]
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": Kind.HPA.api_version, "kind": Kind.HPA.value, "metadata": metadata, "spec": spec}


def _quantity_flag(flag: str, values: dict[str, str] | Any) -> list[str]:
    return [f"{flag}={','.join(f'{name}={value}' for name, value in values.items())}"] if values else []


def forward_step(number: int, action: Action, namespace: str, record: str) -> Step:
    """The kubectl call that applies one action. An HPA the plan describes carries `record` (the plan's record
    name) as RECORD_ANNOTATION from its creation on, as the objects apply changes are stamped with it."""
    return replace(_forward_call(number, action, namespace, record), landing=Landing(action))


def _forward_call(number: int, action: Action, namespace: str, record: str) -> Step:
    if isinstance(action, ScaleWorkload):
        return Step(number, StepType.ACTION, action.type, action.workload.ref,
                    ("scale", action.workload.ref, f"--replicas={action.replicas}"),
                    f"scaled {action.workload.ref} to {action.replicas}")
    if isinstance(action, UpdateResources):
        container = [f"-c={action.container}"] if action.container else []
        args = ("set", "resources", action.workload.ref, *container,
                *_quantity_flag("--requests", action.requests), *_quantity_flag("--limits", action.limits))
        return Step(number, StepType.ACTION, action.type, action.workload.ref, args,
                    f"updated resources of {action.workload.ref}")
    if action.file is not None:
        return Step(number, StepType.ACTION, action.type, f"hpa/{action.name}", ("apply", "-f", "-"),
                    f"applied hpa/{action.name} from {action.file.path}", stdin=action.file.body,
                    stdin_file=action.file.path)
    assert action.bounds is not None
    manifest = hpa_manifest(action.name, namespace, action.workload, action.bounds, {RECORD_ANNOTATION: record})
    bounds = action.bounds
    cpu = f", cpu {bounds.cpu_utilization}%" if bounds.cpu_utilization is not None else ""
    return Step(number, StepType.ACTION, action.type, f"hpa/{action.name}", ("apply", "-f", "-"),
                f"applied hpa/{action.name}", stdin=json.dumps(manifest),
                notes=(f"hpa/{action.name} for {action.workload.ref}: "
                       f"min {bounds.min_replicas}, max {bounds.max_replicas}{cpu}",))


def rollout_steps(refs: Sequence[str], first_number: int, timeout_s: float) -> list[Step]:
    """`rollout status --timeout` for each workload, numbered from `first_number`."""
    return [Step(first_number + offset, StepType.VERIFY, None, ref,
                 ("rollout", "status", ref, f"--timeout={timeout_s:g}s"), f"{ref} rolled out")
            for offset, ref in enumerate(refs)]


def apply_steps(plan: Plan) -> list[Step]:
    """Forward steps, one per action, in plan order."""
    record = record_name(plan)
    return [forward_step(number, action, plan.namespace, record) for number, action in enumerate(plan.actions, start=1)]


def seed_rollback_steps(plan: Plan, live: Objects | None = None) -> list[Step]:
    """The seed's rollback for plans applied without records: hints, then rollout undo, then delete hpa.

    One `rollout undo` per workload, not per action: undoing twice flips the template back again. Given the
    live objects, only actions that are in effect are undone: `rollout undo` on a workload the plan never
    changed would revert someone else's deploy.
    """
    actions = [action for action in plan.actions if live is None or in_effect(action, live)]
    if not actions:
        return []
    undo_targets: dict[str, list[str]] = {}
    for action in actions:
        if isinstance(action, ScaleWorkload | UpdateResources):
            undo_targets.setdefault(action.workload.ref, []).append(action.type)
    steps: list[Step] = []
    covered_hpas = _hint_steps(steps, plan.hints, {("rollout", "undo", ref) for ref in undo_targets})
    scaled_by_hint = {hint.args[1] for hint in plan.hints if isinstance(hint, CommandHint) and hint.args[0] == "scale"}
    _undo_steps(steps, undo_targets, scaled_by_hint)
    for action in actions:
        if isinstance(action, ApplyHpa) and action.name not in covered_hpas:
            covered_hpas.add(action.name)
            _add(steps, StepType.ACTION, action.type, f"hpa/{action.name}", ("delete", "hpa", action.name),
                 f"deleted hpa/{action.name}")
    return steps


def _add(steps: list[Step], type_: StepType, action: str | None, obj: str | None, args: tuple[str, ...],
         summary: str, notes: tuple[str, ...] = ()) -> None:
    steps.append(Step(len(steps) + 1, type_, action, obj, args, summary, notes=notes))


def _undo_steps(steps: list[Step], undo_targets: dict[str, list[str]], scaled_by_hint: set[str]) -> None:
    """Append one `rollout undo` per workload the actions changed (`undo_targets`: ref -> its action types)."""
    for ref, action_types in undo_targets.items():
        if ref in scaled_by_hint and set(action_types) == {ActionType.SCALE_WORKLOAD}:
            continue  # the scale hint restores replicas; an undo would revert the template too (#25236)
        notes = (f"{ref}: one rollout undo covers {' and '.join(action_types)}",) if len(action_types) > 1 else ()
        _add(steps, StepType.ACTION, action_types[0], ref, ("rollout", "undo", ref), f"rolled back {ref}", notes)


def _hint_steps(steps: list[Step], hints: Sequence[Hint],
                undo_args: set[tuple[str, ...]]) -> set[str]:
    """Append a step per hint, in plan order, except a hint that is one of the `rollout undo`s to come; return the
    HPAs the hints already remove or restore."""
    covered_hpas: set[str] = set()
    for hint in hints:
        if isinstance(hint, ManifestHint) or hint.manifest is not None:
            manifest = hint if isinstance(hint, ManifestHint) else hint.manifest
            assert manifest is not None
            covered_hpas.update(name for kind, name in manifest.objects if kind == Kind.HPA)
            summary, text = ((f"ran hint: {hint.text}", hint.text) if isinstance(hint, CommandHint)
                             else (f"applied {manifest.path}", manifest.path))
            steps.append(Step(len(steps) + 1, StepType.HINT, None, None, ("apply", "-f", "-"), summary,
                              stdin=manifest.body, stdin_file=manifest.path, notes=(f"manual hint: {text}",)))
        elif hint.args in undo_args:
            continue  # the action loop of seed_rollback_steps runs this very command
        else:
            if hint.args[:2] == ("delete", "hpa"):
                covered_hpas.add(hint.args[2])
            _add(steps, StepType.HINT, None, _hint_object(hint), hint.args, f"ran hint: {hint.text}",
                 notes=(f"manual hint: {hint.text}",))
    return covered_hpas


def _hint_object(hint: CommandHint) -> str | None:
    if hint.args[0] in ("rollout", "scale"):
        return hint.args[2] if hint.args[0] == "rollout" else hint.args[1]
    if hint.args[0] == "delete":
        return f"hpa/{hint.args[2]}"
    return None
