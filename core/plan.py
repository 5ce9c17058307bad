"""The plan: what `plan.yaml` says, validated into small frozen dataclasses.

The format is the seed's (namespace, target, actions, rollbackHints) plus additive extensions (kind, container,
requests/limits, HPA fields, context). A plan that passes `load_plan` is safe to turn into kubectl argument
lists: every name is a DNS label, every quantity parses, every hint stays inside the plan's directory.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.fields import Fields
from core.hints import Hint, parse_hint, parse_manifest
from core.k8s import WORKLOAD_KINDS
from core.safeyaml import load_one

MAX_REPLICAS = 10_000
MAX_ACTIONS = 20_000
ACTION_TYPES = ("scale_workload", "update_resources", "apply_hpa")
_INFO_FIELDS = {"reason", "description", "comment", "current"}
_PLAN_FIELDS = {"namespace", "target", "actions", "rollbackHints", "context", "generatedAt", "createdAt",
                "description", "title", "summary", "version"}


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet in the plan's namespace."""

    kind: str
    name: str

    @property
    def ref(self) -> str:
        """kubectl's `resource/name` form, e.g. `deployment/web`."""
        return f"{WORKLOAD_KINDS[self.kind]}/{self.name}"


@dataclass(frozen=True)
class ScaleWorkload:
    workload: Workload
    replicas: int
    type: str = "scale_workload"


@dataclass(frozen=True)
class UpdateResources:
    workload: Workload
    container: str | None
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    type: str = "update_resources"


@dataclass(frozen=True)
class HpaBounds:
    min_replicas: int
    max_replicas: int
    cpu_utilization: int | None


@dataclass(frozen=True)
class ApplyHpa:
    """An HPA named `name` targeting `workload`, given as a manifest file or as bounds."""

    name: str
    workload: Workload
    manifest: str | None
    bounds: HpaBounds | None
    type: str = "apply_hpa"


Action = ScaleWorkload | UpdateResources | ApplyHpa


@dataclass(frozen=True)
class Plan:
    path: Path
    namespace: str
    target: str | None
    actions: tuple[Action, ...]
    hints: tuple[Hint, ...]
    context: str | None

    @property
    def directory(self) -> Path:
        return self.path.parent


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; raise InputError naming the file and field on any problem."""
    source = str(path)
    return parse_plan(load_one(path, source), path)


def parse_plan(document: Any, path: Path) -> Plan:
    source = str(path)
    top = Fields(document, source, "", _PLAN_FIELDS)
    namespace = top.name("namespace")
    target = top.optional_string("target")
    context = top.optional_string("context")
    if context is not None and (context.startswith("-") or any(c.isspace() for c in context)):
        top.fail("context", f"{context!r} is not a kube context name")
    raw_actions = top.sequence("actions")
    if len(raw_actions) > MAX_ACTIONS:
        top.fail("actions", f"has {len(raw_actions)} entries; the limit is {MAX_ACTIONS}")
    actions = tuple(
        _parse_action(raw, source, f"actions[{i}]", path.parent, namespace) for i, raw in enumerate(raw_actions)
    )
    hints = tuple(
        parse_hint(raw, source, f"rollbackHints[{i}]", path.parent, namespace)
        for i, raw in enumerate(top.sequence("rollbackHints"))
    )
    return Plan(path=path, namespace=namespace, target=target, actions=actions, hints=hints, context=context)


def _workload(fields: Fields, name_key: str = "name") -> Workload:
    kind = fields.string("kind", default="Deployment")
    if kind not in WORKLOAD_KINDS:
        fields.fail("kind", f"{kind!r} is not supported (use {' or '.join(WORKLOAD_KINDS)})")
    return Workload(kind=kind, name=fields.name(name_key))


def _parse_action(raw: Any, source: str, where: str, plan_dir: Path, namespace: str) -> Action:
    if isinstance(raw, Mapping) and "type" in raw and raw["type"] not in ACTION_TYPES:
        raise InputError(source, f"{where}.type", f"unknown action {raw['type']!r} (known: {', '.join(ACTION_TYPES)})")
    common = {"type", "kind", "name"} | _INFO_FIELDS
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind == "scale_workload":
        fields = Fields(raw, source, where, common | {"replicas"})
        return ScaleWorkload(_workload(fields), fields.integer("replicas", 0, MAX_REPLICAS))
    if kind == "update_resources":
        fields = Fields(raw, source, where, common | {"container", "requests", "limits", "resources"})
        return _update_resources(fields)
    if kind == "apply_hpa":
        allowed = common | {"workload", "manifest", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"}
        return _apply_hpa(Fields(raw, source, where, allowed), plan_dir, namespace)
    fields = Fields(raw, source, where, set(raw) if isinstance(raw, Mapping) else set())
    fields.fail("type", "is required (one of: " + ", ".join(ACTION_TYPES) + ")")


def _update_resources(fields: Fields) -> UpdateResources:
    nested = Fields(fields.mapping("resources"), fields.source, fields.where("resources"), {"requests", "limits"})
    if fields.has("resources") and (fields.has("requests") or fields.has("limits")):
        fields.fail("resources", "give requests/limits either at the top of the action or under resources, not both")
    source_fields = nested if fields.has("resources") else fields
    requests, limits = source_fields.requests_and_limits()
    container = fields.name("container") if fields.has("container") else None
    return UpdateResources(_workload(fields), container, requests, limits)


def _apply_hpa(fields: Fields, plan_dir: Path, namespace: str) -> ApplyHpa:
    name = fields.name("name")
    workload_name = fields.name("workload") if fields.has("workload") else name
    workload = Workload(kind=_workload(fields).kind, name=workload_name)
    has_bounds = fields.has("maxReplicas") or fields.has("minReplicas")
    if fields.has("manifest"):
        if has_bounds:
            fields.fail("manifest", "give the HPA as a manifest or as minReplicas/maxReplicas, not both")
        where = fields.where("manifest")
        manifest = parse_manifest(fields.string("manifest"), fields.source, where, plan_dir, namespace)
        if ("HorizontalPodAutoscaler", name) not in manifest.objects:
            fields.fail("manifest", f"{manifest.path!r} does not declare HorizontalPodAutoscaler {name!r}")
        return ApplyHpa(name, workload, manifest.path, None)
    if not has_bounds:
        fields.fail("maxReplicas", "an apply_hpa action needs a manifest or minReplicas/maxReplicas")
    max_replicas = fields.integer("maxReplicas", 1, MAX_REPLICAS)
    min_replicas = fields.integer("minReplicas", 1, MAX_REPLICAS, default=1)
    if min_replicas > max_replicas:
        fields.fail("minReplicas", f"{min_replicas} is more than maxReplicas {max_replicas}")
    cpu = fields.optional_integer("targetCPUUtilizationPercentage", 1, 1000)
    return ApplyHpa(name, workload, None, HpaBounds(min_replicas, max_replicas, cpu))
