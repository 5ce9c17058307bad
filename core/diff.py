"""Desired state against live objects: the plan actions that would make the cluster match, and only those.

`live` is what `kubectl get deployments,statefulsets,horizontalpodautoscalers -o json` returned for the
namespace (a list of object dicts). Rules:

- A workload that an HPA manages (an HPA whose `scaleTargetRef` names it) never gets `scale_workload`: the HPA
  would undo it. It gets `apply_hpa` bounds instead; a desired `replicas` becomes the HPA's floor (minReplicas,
  raising maxReplicas if needed), and whatever the desired state leaves out (max, CPU target) is kept as live.
- Resources compare numerically (`0.5` equals `500m`), and only the quantities the desired state names.
- A desired workload, or container, that does not exist is an InputError: infra-scale sizes workloads, it
  cannot create them.
- For every HPA the plan changes, the live object is kept (`previous_hpas`) so the plan can carry it as a
  `previous-hpa-<name>.yaml` manifest for the seed's rollback.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.desired import ContainerResources, DesiredState, DesiredWorkload
from core.errors import InputError
from core.k8s import WORKLOAD_KINDS, Kind, parse_quantity
from core.plan import Action, ApplyHpa, HpaBounds, ScaleWorkload, UpdateResources, Workload
from core.state import managing_hpa

LIVE_RESOURCES = tuple(kind.plural for kind in Kind)
"""What to read per namespace, in one `kubectl get a,b,c -o json`."""


@dataclass(frozen=True)
class Change:
    """One planned action with what the cluster holds now (`current`, for reviewers and rollback hints)."""

    action: Action
    current: Any
    revision: str | None = None


@dataclass(frozen=True)
class Diff:
    changes: tuple[Change, ...]
    previous_hpas: Mapping[str, dict[str, Any]]
    notes: tuple[str, ...]
    live: tuple[Mapping[str, Any], ...] = ()
    """The objects the diff was taken against: the before of every reviewer's row."""

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(change.action for change in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes


def _index(live: Iterable[Mapping[str, Any]]) -> tuple[dict[Workload, Mapping[str, Any]], list[Mapping[str, Any]]]:
    workloads: dict[Workload, Mapping[str, Any]] = {}
    hpas: list[Mapping[str, Any]] = []
    for item in live:
        kind, name = item.get("kind"), (item.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            continue
        if kind in WORKLOAD_KINDS:
            workloads[Workload(kind, name)] = item
        elif kind == Kind.HPA:
            hpas.append(item)
    hpas.sort(key=lambda hpa: str(hpa["metadata"]["name"]))
    return workloads, hpas


def hpa_bounds(hpa: Mapping[str, Any]) -> HpaBounds:
    """Bounds of a live HPA, autoscaling/v2 (metrics) or v1 (targetCPUUtilizationPercentage)."""
    spec = hpa.get("spec") or {}
    cpu = spec.get("targetCPUUtilizationPercentage")
    for metric in spec.get("metrics") or ():
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu" and target.get("type") == "Utilization":
            cpu = target.get("averageUtilization")
    return HpaBounds(int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1),
                     int(cpu) if isinstance(cpu, int) else None)


def _metric_name(metric: Mapping[str, Any]) -> str:
    kind = str(metric.get("type") or "metric")
    source = metric.get(kind[:1].lower() + kind[1:]) or {}
    name = source.get("name") or (source.get("metric") or {}).get("name")
    return str(name) if kind == "Resource" and name else f"{kind.lower()} {name or ''}".strip()


def _same_quantity(wanted: str, live: Any) -> bool:
    if live is None:
        return False
    return parse_quantity(wanted) == parse_quantity(str(live))


def _containers(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {str(c.get("name")): c for c in spec.get("containers") or () if isinstance(c, Mapping)}


def _resources_change(state: DesiredState, item: DesiredWorkload, wanted: ContainerResources,
                      live: Mapping[str, Any], obj: Mapping[str, Any]) -> Change | None:
    live_resources = live.get("resources") or {}
    live_requests = dict(live_resources.get("requests") or {})
    live_limits = dict(live_resources.get("limits") or {})
    requests = {k: v for k, v in wanted.requests.items() if not _same_quantity(v, live_requests.get(k))}
    limits = {k: v for k, v in wanted.limits.items() if not _same_quantity(v, live_limits.get(k))}
    if not requests and not limits:
        return None
    _check_requests_within_limits(state, item, wanted, {**live_requests, **wanted.requests},
                                  {**live_limits, **wanted.limits})
    current = {key: {k: str(v) for k, v in values.items()}
               for key, values in (("requests", live_requests), ("limits", live_limits)) if values}
    revision = ((obj.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision")
    return Change(UpdateResources(item.workload, wanted.name, requests, limits), current,
                  str(revision) if revision is not None else None)


def _check_requests_within_limits(state: DesiredState, item: DesiredWorkload, wanted: ContainerResources,
                                  after_requests: Mapping[str, Any], after_limits: Mapping[str, Any]) -> None:
    """Refuse (InputError) a change after which a container would request more of a resource than its limit."""
    for resource, request in after_requests.items():
        limit = after_limits.get(resource)
        request_value, limit_value = parse_quantity(str(request)), parse_quantity(str(limit))
        if limit is not None and request_value is not None and limit_value is not None and request_value > limit_value:
            raise InputError(state.source, f"{item.where}.containers.{wanted.name}.requests.{resource}",
                             f"{request} would be more than the limit {limit} of {item.workload.ref}")


def _hpa_change(state: DesiredState, item: DesiredWorkload, hpa: Mapping[str, Any] | None,
                notes: list[str]) -> tuple[Change | None, Mapping[str, Any] | None]:
    """The apply_hpa action for `item`, if its HPA must change; also the live HPA to keep for rollback."""
    if hpa is None:
        if item.hpa is None:
            return None, None
        return Change(ApplyHpa(item.workload.name, item.workload, None, item.hpa), None), None
    name = str(hpa["metadata"]["name"])
    live = hpa_bounds(hpa)
    if item.hpa is not None:
        wanted = HpaBounds(item.hpa.min_replicas, item.hpa.max_replicas,
                           item.hpa.cpu_utilization if item.hpa.cpu_utilization is not None else live.cpu_utilization)
    elif item.replicas is not None:
        floor = max(item.replicas, 1)
        wanted = HpaBounds(floor, max(live.max_replicas, floor), live.cpu_utilization)
        if wanted != live:
            notes.append(f"{item.workload.ref} is managed by hpa/{name}: replicas {item.replicas} "
                         f"becomes the HPA's minReplicas, not a scale")
    else:
        return None, None
    if wanted == live:
        return None, None
    others = [_metric_name(metric) for metric in (hpa.get("spec") or {}).get("metrics") or ()
              if _metric_name(metric) != "cpu"]
    if others:
        notes.append(f"hpa/{name} also scales on {', '.join(others)}: the plan's HPA carries only the CPU target, "
                     "so applying it drops those metrics (edit the plan to keep them)")
    current = {"minReplicas": live.min_replicas, "maxReplicas": live.max_replicas}
    if live.cpu_utilization is not None:
        current["targetCPUUtilizationPercentage"] = live.cpu_utilization
    return Change(ApplyHpa(name, item.workload, None, wanted), current), hpa


def diff(state: DesiredState, live: Iterable[Mapping[str, Any]]) -> Diff:
    """The actions that take `live` to `state`, in desired order: scale, resources, HPA per workload."""
    live = tuple(live)
    workloads, hpas = _index(live)
    changes: list[Change] = []
    previous: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for item in state.workloads:
        obj = workloads.get(item.workload)
        if obj is None:
            raise InputError(state.source, f"{item.where}.name",
                             f"{item.workload.ref} does not exist in namespace {state.namespace!r}; "
                             "infra-scale sizes existing workloads, it cannot create them")
        hpa = managing_hpa(item.workload, hpas)
        if hpa is None and item.hpa is not None:
            clash = next((h for h in hpas if h["metadata"]["name"] == item.workload.name), None)
            if clash is not None:
                target = (clash.get("spec") or {}).get("scaleTargetRef") or {}
                raise InputError(state.source, f"{item.where}.hpa",
                                 f"hpa/{item.workload.name} already exists for {target.get('kind')}/"
                                 f"{target.get('name')}; it would be retargeted")
        if item.replicas is not None and hpa is None:
            live_replicas = (obj.get("spec") or {}).get("replicas", 1)
            if live_replicas != item.replicas:
                changes.append(Change(ScaleWorkload(item.workload, item.replicas), live_replicas))
        live_containers = _containers(obj)
        for wanted in item.containers:
            container = live_containers.get(wanted.name)
            if container is None:
                raise InputError(state.source, f"{item.where}.containers.{wanted.name}",
                                 f"{item.workload.ref} has no container {wanted.name!r} "
                                 f"(it has: {', '.join(sorted(live_containers)) or 'none'})")
            change = _resources_change(state, item, wanted, container, obj)
            if change is not None:
                changes.append(change)
        hpa_change, prior = _hpa_change(state, item, hpa, notes)
        if hpa_change is not None:
            changes.append(hpa_change)
            if prior is not None:
                previous[str(prior["metadata"]["name"])] = dict(prior)
    return Diff(tuple(changes), previous, tuple(notes), live)
