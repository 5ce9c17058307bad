"""Change rows: one per object and field a plan action touches, `before → after`, for reviewers.

The same views read a live object (infra-plan), the state apply recorded before and after each step (infra-apply)
and the states rollback restores, so a reviewer reads "deployment/web replicas 2 → 4" wherever the change shows.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.plan import Action, ApplyHpa, Plan, ScaleWorkload, UpdateResources
from core.state import expected_after
from core.steps import Landing, hpa_manifest

ABSENT = "—"
"""How a field that does not exist (yet, or any more) is shown."""
UNREAD = "?"
"""How a value that was not read from the cluster is shown (a preview reads nothing; infra-plan does)."""


@dataclass(frozen=True)
class FieldChange:
    obj: str
    """kubectl's `kind/name`: `deployment/web`, `hpa/web`."""
    field: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_json(self) -> dict[str, str]:
        return {"object": self.obj, "field": self.field, "before": self.before, "after": self.after}


def object_of(action: Action) -> str:
    return f"hpa/{action.name}" if isinstance(action, ApplyHpa) else action.workload.ref


def shown_value(value: Any) -> str:
    return ABSENT if value is None else str(value)


def _cpu_target(spec: Mapping[str, Any]) -> Any:
    for metric in spec.get("metrics") or ():
        resource = metric.get("resource") or {} if isinstance(metric, Mapping) else {}
        target = resource.get("target") or {}
        if resource.get("name") == "cpu" and target.get("type") == "Utilization":
            return target.get("averageUtilization")
    return spec.get("targetCPUUtilizationPercentage")


def field_values(action: Action, state: Mapping[str, Any] | None) -> dict[str, Any]:
    """{field: value} of what `action` touches in `state` (a `core.state.state_of` result); {} when absent."""
    if state is None:
        return {}
    if isinstance(action, ScaleWorkload):
        return {"replicas": state.get("replicas")}
    if isinstance(action, UpdateResources):
        values: dict[str, Any] = {}
        for container, resources in sorted((state.get("containers") or {}).items()):
            for part, wanted in (("requests", action.requests), ("limits", action.limits)):
                for name in wanted:
                    values[f"{container} {part}.{name}"] = ((resources or {}).get(part) or {}).get(name)
        return values
    spec = state.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    return {"target": f"{ref.get('kind')}/{ref.get('name')}" if ref else None,
            "minReplicas": spec.get("minReplicas"), "maxReplicas": spec.get("maxReplicas"),
            "cpu utilization %": _cpu_target(spec)}


def changes_between(action: Action, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                    before_read: bool = True) -> list[FieldChange]:
    """A row per field either state shows, in the after state's order; `before_read=False` shows the before
    column as not read."""
    old, new = field_values(action, before), field_values(action, after)
    fields = [*new, *(name for name in old if name not in new)]
    return [FieldChange(object_of(action), name, shown_value(old.get(name)) if before_read else UNREAD,
                        shown_value(new.get(name)))
            for name in fields if old.get(name) is not None or new.get(name) is not None]


def _manifest_spec(action: ApplyHpa) -> dict[str, Any]:
    """The spec of the manifest the action validated (as read once, never the file again)."""
    spec = json.loads(action.file.body).get("spec") if action.file is not None else None
    return dict(spec) if isinstance(spec, Mapping) else {}


def planned_state(plan: Plan, action: Action, live: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The state `action` would leave, computed from the plan and the live state (no cluster call)."""
    if isinstance(action, ApplyHpa):
        if action.manifest is not None:
            return {"spec": _manifest_spec(action)}
        assert action.bounds is not None
        return {"spec": hpa_manifest(action.name, plan.namespace, action.workload, action.bounds)["spec"]}
    if live is None:
        return None
    return expected_after(action, live)


def wanted_changes(action: Action, before: str = UNREAD) -> list[FieldChange]:
    """The fields the action sets, from the plan alone (no live state, no manifest file read)."""
    wanted: dict[str, Any]
    if isinstance(action, ScaleWorkload):
        wanted = {"replicas": action.replicas}
    elif isinstance(action, UpdateResources):
        container = action.container or "*"
        wanted = {**{f"{container} requests.{k}": v for k, v in action.requests.items()},
                  **{f"{container} limits.{k}": v for k, v in action.limits.items()}}
    elif action.bounds is not None:
        bounds = action.bounds
        wanted = {"target": f"{action.workload.kind}/{action.workload.name}", "minReplicas": bounds.min_replicas,
                  "maxReplicas": bounds.max_replicas, "cpu utilization %": bounds.cpu_utilization}
    else:
        wanted = {"manifest": action.manifest}
    return [FieldChange(object_of(action), name, before, shown_value(value))
            for name, value in wanted.items() if value is not None]


def step_changes(landing: Landing, before: Any, after: Any) -> list[FieldChange]:
    """The rows of one step's result: a forward step shows its recorded states (or, not run yet, what it sets);
    an undo shows the state apply left (as the record has it) → the state it restores."""
    if landing.reverse:
        return changes_between(landing.action, landing.found, landing.before, before_read=landing.found is not None)
    if before is None and after is None:
        return wanted_changes(landing.action)
    return changes_between(landing.action, before, after)
