"""The part of a live object each action touches, in a form that can be stored, compared and restored.

The same function reads the state before apply (capture), after apply (what rollback expects to find), and
right before rollback (drift check), so the three are always comparable.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.k8s import Kind, parse_quantity
from core.plan import Action, ApplyHpa, ScaleWorkload, UpdateResources, Workload

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
_HPA_SPEC_FIELDS = ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior")
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                  "ownerReferences", "deletionTimestamp")

Objects = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class _Index:
    """One listing's objects by (kind, name), and its HPAs by the (kind, name) of their scale target; the first
    match wins, as a scan in order would find it."""

    objects: Objects
    size: int
    by_name: dict[tuple[str, str], Mapping[str, Any]]
    hpa_for: dict[tuple[str, str], Mapping[str, Any]]


_last_index: list[_Index] = []
"""The index of the listing looked up last. Every action of a plan is looked up in the same capture, so a scan
per lookup was quadratic: 3,000 actions over 2,000 objects took seconds of CPU."""


def _index(objects: Objects) -> _Index:
    cached = _last_index[-1] if _last_index else None
    if cached is not None and cached.objects is objects and cached.size == len(objects):
        return cached
    by_name: dict[tuple[str, str], Mapping[str, Any]] = {}
    hpa_for: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in objects:
        by_name.setdefault((str(item.get("kind")), str(item.get("metadata", {}).get("name"))), item)
        if item.get("kind") == Kind.HPA:
            ref = (item.get("spec") or {}).get("scaleTargetRef") or {}
            hpa_for.setdefault((str(ref.get("kind")), str(ref.get("name"))), item)
    index = _Index(objects, len(objects), by_name, hpa_for)
    _last_index[:] = [index]
    return index


def find(objects: Objects, kind: str, name: str) -> Mapping[str, Any] | None:
    return _index(objects).by_name.get((kind, name))


def managing_hpa(workload: Workload, objects: Objects) -> Mapping[str, Any] | None:
    """The first HPA in `objects` whose scaleTargetRef names `workload`, if any."""
    return _index(objects).hpa_for.get((workload.kind, workload.name))


def normalized_resources(resources: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Requests and limits with quantities in one canonical spelling ("1000m" == "1"), empty parts dropped."""
    result: dict[str, dict[str, str]] = {}
    for part in ("requests", "limits"):
        values = (resources or {}).get(part) or {}
        if values:
            result[part] = {name: _canonical(str(value)) for name, value in sorted(values.items())}
    return result


def _canonical(quantity: str) -> str:
    value = parse_quantity(quantity)
    return quantity if value is None else format(value.normalize(), "f")


def sanitized(item: Mapping[str, Any]) -> dict[str, Any]:
    """An object as a manifest that can be sent back: no status, no server-owned metadata."""
    metadata = {key: value for key, value in item.get("metadata", {}).items() if key not in _SERVER_FIELDS}
    annotations = {key: value for key, value in metadata.get("annotations", {}).items()
                   if key != "kubectl.kubernetes.io/last-applied-configuration"}
    metadata = {**metadata, "annotations": annotations} if annotations else \
        {key: value for key, value in metadata.items() if key != "annotations"}
    return {"apiVersion": item.get("apiVersion"), "kind": item.get("kind"), "metadata": metadata,
            "spec": item.get("spec", {})}


def _touched_containers(action: UpdateResources, workload: Mapping[str, Any]) -> dict[str, Any]:
    """Each touched container's resources exactly as stored, so a restore writes back the same spelling."""
    containers = workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return {c["name"]: dict(c.get("resources") or {}) for c in containers
            if action.container is None or c.get("name") == action.container}


def state_of(action: Action, objects: Objects) -> dict[str, Any] | None:
    """What `action` touches, as it is in `objects` (None when the object does not exist)."""
    if isinstance(action, ApplyHpa):
        hpa = find(objects, Kind.HPA, action.name)
        if hpa is None:
            return None
        spec = hpa.get("spec", {})
        return {"spec": {key: spec[key] for key in _HPA_SPEC_FIELDS if key in spec}, "manifest": sanitized(hpa)}
    workload = find(objects, action.workload.kind, action.workload.name)
    if workload is None:
        return None
    if isinstance(action, ScaleWorkload):
        hpa = managing_hpa(action.workload, objects)
        return {"replicas": workload.get("spec", {}).get("replicas", 1),
                "hpa": str(hpa["metadata"]["name"]) if hpa is not None else None}
    containers = _touched_containers(action, workload)
    if action.container is not None and action.container not in containers:
        return {"containers": {}, "missing_container": action.container}
    revision = workload.get("metadata", {}).get("annotations", {}).get(REVISION_ANNOTATION)
    template = workload.get("spec", {}).get("template", {})
    names = [c.get("name") for c in template.get("spec", {}).get("containers", [])]
    return {"containers": containers, "indexes": {name: names.index(name) for name in containers},
            "revision": revision, "template": _template_digest(template, set(containers))}


def captured(action: Action, objects: Objects) -> dict[str, Any] | None:
    """The before-state apply records: `state_of`, and for an HPA the plan creates, its target's replicas
    (the HPA controller may raise them, and rollback puts them back)."""
    state = state_of(action, objects)
    if state is not None or not isinstance(action, ApplyHpa):
        return state
    workload = find(objects, action.workload.kind, action.workload.name)
    return None if workload is None else {"target_replicas": workload.get("spec", {}).get("replicas", 1)}


def prior_object(action: Action, before: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The object's recorded state before apply, None when it did not exist (an HPA captured only by its
    target's replicas, or recorded before those were captured)."""
    if isinstance(action, ApplyHpa) and before is not None and "manifest" not in before:
        return None
    return before


def _template_digest(template: Mapping[str, Any], touched: set[str]) -> str:
    """The pod template without the resources a step sets: a change here is someone else's deploy."""
    spec = dict(template.get("spec", {}))
    spec["containers"] = [{key: value for key, value in container.items() if key != "resources"}
                          if container.get("name") in touched else container
                          for container in spec.get("containers", [])]
    text = json.dumps({**template, "spec": spec}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def comparable(action: Action, state: Mapping[str, Any] | None) -> Any:
    """The fields of a state that say whether the object is as a step left it (ignoring bookkeeping)."""
    if state is None:
        return None
    if isinstance(action, ScaleWorkload):
        return state.get("replicas")
    if isinstance(action, UpdateResources):
        resources = {name: normalized_resources(value) for name, value in state.get("containers", {}).items()}
        return {"resources": resources, "template": state.get("template")}
    return state.get("spec")


def expected_after(action: Action, before: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The state a successful step leaves, computed from the plan, for when a crash lost the recorded one.

    None means "cannot be computed" (an HPA's server-side defaults): the caller then relies on the step status.
    """
    if before is None:
        return None
    if isinstance(action, ScaleWorkload):
        return {**before, "replicas": action.replicas}
    if isinstance(action, UpdateResources):
        changes = {"requests": action.requests, "limits": action.limits}
        containers = {name: {part: {**resources.get(part, {}), **changes[part]}
                             for part in ("requests", "limits") if resources.get(part) or changes[part]}
                      for name, resources in before.get("containers", {}).items()}
        return {**before, "containers": containers}
    return None


def in_effect(action: Action, objects: Objects) -> bool:
    """Whether the live objects already are as `action` wants them (applying it again would change nothing).

    Without a record this is the only evidence that a plan was applied (by the old scripts) at all.
    """
    live = state_of(action, objects)
    if live is None:
        return False
    if isinstance(action, ApplyHpa):
        bounds = action.bounds
        spec = live["spec"]
        return bounds is None or (spec.get("minReplicas") == bounds.min_replicas
                                  and spec.get("maxReplicas") == bounds.max_replicas)
    return bool(comparable(action, expected_after(action, live)) == comparable(action, live))
