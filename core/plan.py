"""The plan: what `plan.yaml` says, validated into small frozen dataclasses.

The format is the seed's (namespace, target, actions, rollbackHints) plus additive extensions (kind, container,
requests/limits, HPA fields, context). A plan that passes `load_plan` is safe to turn into kubectl argument
lists: every name is a DNS label, every quantity parses, every hint stays inside the plan's directory, and every
manifest holds one HorizontalPodAutoscaler for the plan's own workloads.

The fields are declared once (PLAN, ACTIONS): `Record.open` checks a document against them, and the JSON Schema
for editors (core/schema/plan.schema.json) is rendered from them by `schema_text` (scripts/generate_schema.py).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.conventions import repository_path
from core.errors import InputError
from core.expiry import EXPIRES_DESCRIPTION, EXPIRES_PATTERN, Expiry, expiry_problem, parse_expiry
from core.fields import (
    CONTEXT,
    NAME,
    Anything,
    Choice,
    Exclusive,
    Field,
    Fields,
    Integer,
    Items,
    Matching,
    Needs,
    Quantities,
    Record,
    Scalar,
    Schema,
    Text,
    type_name,
)
from core.hints import (
    HPA_REPLICAS,
    SAFE_PATH_PATTERN,
    CommandHint,
    Hint,
    ManifestHint,
    hint_schema,
    manifest_path_problem,
    parse_hint,
    parse_manifest,
)
from core.k8s import MAX_REPLICAS as MAX_REPLICAS
from core.k8s import WORKLOAD_KINDS, shown
from core.k8s import Workload as Workload
from core.safeyaml import parse_one, read_bytes
from core.vocabulary import ActionType

MAX_ACTIONS = 20_000
SCHEMA_ID = "https://infra-orchestrator.dev/schema/plan.schema.json"

# ------------------------------------------------------------------ the declarations: validator and schema
KIND = Field(Choice(tuple(WORKLOAD_KINDS)), default="Deployment")
CPU_PERCENT = Integer(1, 1000)
_INFO = {"reason": Field(Text()), "description": Field(Text()), "comment": Field(Text()), "current": Field(Anything())}
_QUANTITIES = {"requests": Field(Quantities()), "limits": Field(Quantities())}


def _action(type_: str, fields: dict[str, Field], exclusive: tuple[Exclusive, ...] = (),
            needs: tuple[Needs, ...] = ()) -> Record:
    common = {"type": Field(Choice((type_,)), required=True), "kind": KIND, "name": Field(NAME, required=True)}
    return Record({**common, **fields, **_INFO}, exclusive, needs)


ACTIONS: dict[str, Record] = {
    ActionType.SCALE_WORKLOAD: _action(
        ActionType.SCALE_WORKLOAD, {"replicas": Field(Integer(0, MAX_REPLICAS), required=True)}),
    ActionType.UPDATE_RESOURCES: _action(
        ActionType.UPDATE_RESOURCES,
        {"container": Field(NAME), **_QUANTITIES, "resources": Field(Record(_QUANTITIES))},
        exclusive=(Exclusive(("resources",), ("requests", "limits"),
                             "give requests/limits either at the top of the action or under resources, not both"),),
    ),
    ActionType.APPLY_HPA: _action(
        ActionType.APPLY_HPA,
        {"workload": Field(NAME), "manifest": Field(Matching(SAFE_PATH_PATTERN, manifest_path_problem)),
         "minReplicas": Field(HPA_REPLICAS, default=1), "maxReplicas": Field(HPA_REPLICAS),
         "targetCPUUtilizationPercentage": Field(CPU_PERCENT)},
        exclusive=(Exclusive(("manifest",), ("minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"),
                             "give the HPA as a manifest or as minReplicas/maxReplicas, not both"),),
        needs=(Needs(("manifest", "maxReplicas"), "maxReplicas",
                     "an apply_hpa action needs a manifest or maxReplicas"),),
    ),
}
"""Each action type and its fields."""

_ACTION_SCHEMA: Schema = {"type": "object", "required": ["type"], "properties": {"type": {"enum": list(ACTIONS)}},
                          "oneOf": [record.schema() for record in ACTIONS.values()]}
PLAN = Record(
    {
        "namespace": Field(NAME, required=True),
        "target": Field(NAME),
        "context": Field(CONTEXT),
        **{key: Field(Text()) for key in ("generatedAt", "createdAt", "description", "title", "summary")},
        "version": Field(Scalar()),
        "expires": Field(Matching(EXPIRES_PATTERN, expiry_problem, description=EXPIRES_DESCRIPTION)),
        "actions": Field(Items(_ACTION_SCHEMA, MAX_ACTIONS)),
        "rollbackHints": Field(Items(hint_schema(), MAX_ACTIONS)),
    },
    notes={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "infra-orchestrator plan",
        "description": "A scaling plan: the seed's format (namespace, target, actions, rollbackHints) plus additive "
                       "extensions. Generated from the declarations in core/plan.py by scripts/generate_schema.py; "
                       "the loader also checks what a schema cannot show (a request above its limit, minReplicas "
                       "above maxReplicas, what manifest and hint files hold).",
    },
)
"""The plan file."""


def schema_text() -> str:
    """core/schema/plan.schema.json as the declarations above make it."""
    return json.dumps(PLAN.schema(), indent=2) + "\n"


@dataclass(frozen=True)
class ScaleWorkload:
    workload: Workload
    replicas: int
    type: ActionType = ActionType.SCALE_WORKLOAD


@dataclass(frozen=True)
class UpdateResources:
    workload: Workload
    container: str | None
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    type: ActionType = ActionType.UPDATE_RESOURCES


@dataclass(frozen=True)
class HpaBounds:
    min_replicas: int
    max_replicas: int
    cpu_utilization: int | None


@dataclass(frozen=True)
class ApplyHpa:
    """An HPA named `name` targeting `workload`, given as a manifest file (`manifest`, read and validated into
    `file`) or as bounds."""

    name: str
    workload: Workload
    manifest: str | None
    bounds: HpaBounds | None
    file: ManifestHint | None = None
    type: ActionType = ActionType.APPLY_HPA


Action = ScaleWorkload | UpdateResources | ApplyHpa


@dataclass(frozen=True)
class Plan:
    path: Path
    namespace: str
    target: str | None
    actions: tuple[Action, ...]
    hints: tuple[Hint, ...]
    context: str | None
    data: bytes = field(default=b"", repr=False)
    """The plan file's bytes as read once: what was parsed, and what the gate compares with the PR."""
    expires: Expiry | None = None
    """A time-boxed plan: when its apply is rolled back by itself (core.expiry)."""

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def files(self) -> dict[str, bytes]:
        """{path relative to the plan: bytes as read once} of every other file the plan reads: apply_hpa
        manifests, manifest hints and `kubectl apply -f` hints."""
        read = [action.file for action in self.actions if isinstance(action, ApplyHpa)]
        read += [hint.manifest if isinstance(hint, CommandHint) else hint for hint in self.hints]
        return {manifest.path: manifest.data for manifest in read if manifest is not None}

    @property
    def repository_path(self) -> str:
        return repository_path(self.path)


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; raise InputError naming the file and field on any problem. The plan and every
    file it reads are read once: the Plan keeps their bytes and the objects validated from them."""
    source = str(path)
    data = read_bytes(path, source)
    return parse_plan(parse_one(data, source), path, data)


def parse_plan(document: Any, path: Path, data: bytes = b"") -> Plan:
    source = str(path)
    top = PLAN.open(document, source, "")
    namespace = top.string("namespace")
    actions = tuple(_parse_action(raw, source, f"actions[{i}]", path.parent, namespace)
                    for i, raw in enumerate(top.items("actions")))
    workloads = {action.workload for action in actions}
    hints = tuple(
        parse_hint(raw, source, f"rollbackHints[{i}]", path.parent, namespace, workloads,
                   {action.name for action in actions if isinstance(action, ApplyHpa)})
        for i, raw in enumerate(top.items("rollbackHints"))
    )
    return Plan(path=path, namespace=namespace, target=top.optional_string("target"), actions=actions, hints=hints,
                context=top.optional_string("context"), data=data, expires=parse_expiry(top.optional_string("expires")))


def _workload(fields: Fields, name_key: str = "name") -> Workload:
    return Workload(kind=fields.string("kind"), name=fields.string(name_key))


def _parse_action(raw: Any, source: str, where: str, plan_dir: Path, namespace: str) -> Action:
    if not isinstance(raw, Mapping):
        raise InputError(source, where, f"must be a mapping, not {type_name(raw)}")
    type_ = raw.get("type")
    if type_ is None:
        raise InputError(source, f"{where}.type", "is required (one of: " + ", ".join(ACTIONS) + ")")
    if not isinstance(type_, str) or type_ not in ACTIONS:
        raise InputError(source, f"{where}.type", f"unknown action {shown(type_)} (known: {', '.join(ACTIONS)})")
    fields = ACTIONS[type_].open(raw, source, where)
    if type_ == ActionType.SCALE_WORKLOAD:
        return ScaleWorkload(_workload(fields), fields.integer("replicas"))
    if type_ == ActionType.UPDATE_RESOURCES:
        requests, limits = (fields.optional_nested("resources") or fields).requests_and_limits()
        return UpdateResources(_workload(fields), fields.optional_string("container"), requests, limits)
    return _apply_hpa(fields, plan_dir, namespace)


def _apply_hpa(fields: Fields, plan_dir: Path, namespace: str) -> ApplyHpa:
    name = fields.string("name")
    workload = Workload(kind=fields.string("kind"), name=fields.optional_string("workload") or name)
    manifest = fields.optional_string("manifest")
    if manifest is not None:
        hint = parse_manifest(manifest, fields.source, fields.where("manifest"), plan_dir, namespace, {workload}, name)
        return ApplyHpa(name, workload, hint.path, None, hint)
    max_replicas = fields.optional_integer("maxReplicas")
    assert max_replicas is not None  # declared: a manifest or maxReplicas
    min_replicas = fields.integer("minReplicas")
    if min_replicas > max_replicas:
        fields.fail("minReplicas", f"{min_replicas} is more than maxReplicas {max_replicas}")
    bounds = HpaBounds(min_replicas, max_replicas, fields.optional_integer("targetCPUUtilizationPercentage"))
    return ApplyHpa(name, workload, None, bounds)
