"""The desired state: what sizes a target's workloads should have, from a file or from the seed's flags.

A desired-state file (one per target, e.g. `ops/desired/staging.yaml`):

    target: staging
    namespace: assistant-staging
    context: staging-cluster            # optional kube context
    workloads:
      - name: web                       # kind: Deployment (default) or StatefulSet
        replicas: 2
        containers:                     # per container name; only the quantities given are managed
          app:
            requests: {cpu: 250m, memory: 256Mi}
            limits: {cpu: "1", memory: 512Mi}
      - name: api
        hpa: {minReplicas: 2, maxReplicas: 6, targetCPUUtilizationPercentage: 70}

Everything is optional per workload except `name`: what is not given is not managed. The same rules as plans
apply (DNS labels, quantities, ranges, unknown fields), and every error names the file and the field. The seed's
one-off form `--workload=Deployment:web:2` (KIND:NAME:REPLICAS) builds the same model.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.fields import Fields
from core.k8s import WORKLOAD_KINDS, dns_label_problem
from core.plan import MAX_REPLICAS, HpaBounds, Workload
from core.safeyaml import load_one

MAX_WORKLOADS = 1_000
_TOP_FIELDS = {"target", "namespace", "context", "workloads", "description"}
_WORKLOAD_FIELDS = {"kind", "name", "replicas", "containers", "hpa", "description"}
_HPA_FIELDS = {"minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"}


@dataclass(frozen=True)
class ContainerResources:
    """The requests and limits wanted for one container (only these quantities are compared and changed)."""

    name: str
    requests: Mapping[str, str]
    limits: Mapping[str, str]


@dataclass(frozen=True)
class DesiredWorkload:
    """One workload's wanted size. `where` is its place in the source (`workloads[1]`, `--workload[0]`)."""

    workload: Workload
    replicas: int | None
    containers: tuple[ContainerResources, ...]
    hpa: HpaBounds | None
    where: str


@dataclass(frozen=True)
class DesiredState:
    source: str
    target: str
    namespace: str
    context: str | None
    workloads: tuple[DesiredWorkload, ...]


def load_desired(path: Path) -> DesiredState:
    """Read and validate a desired-state file; InputError names the file and field on any problem."""
    source = str(path)
    return parse_desired(load_one(path, source), source)


def parse_desired(document: Any, source: str) -> DesiredState:
    top = Fields(document, source, "", _TOP_FIELDS)
    target = top.name("target")
    namespace = top.name("namespace")
    context = top.optional_string("context")
    if context is not None and (context.startswith("-") or any(c.isspace() for c in context)):
        top.fail("context", f"{context!r} is not a kube context name")
    raw = top.sequence("workloads", required=True)
    if not raw:
        top.fail("workloads", "is empty; list at least one workload")
    if len(raw) > MAX_WORKLOADS:
        top.fail("workloads", f"has {len(raw)} entries; the limit is {MAX_WORKLOADS}")
    workloads = tuple(_parse_workload(item, source, f"workloads[{i}]") for i, item in enumerate(raw))
    _no_duplicates(workloads, source)
    return DesiredState(source, target, namespace, context, workloads)


def _parse_workload(raw: Any, source: str, where: str) -> DesiredWorkload:
    fields = Fields(raw, source, where, _WORKLOAD_FIELDS)
    kind = fields.string("kind", default="Deployment")
    if kind not in WORKLOAD_KINDS:
        fields.fail("kind", f"{kind!r} is not supported (use {' or '.join(WORKLOAD_KINDS)})")
    workload = Workload(kind, fields.name("name"))
    replicas = fields.optional_integer("replicas", 0, MAX_REPLICAS)
    hpa = _parse_hpa(fields) if fields.has("hpa") else None
    if hpa is not None and replicas is not None:
        fields.fail("replicas", "an HPA sizes this workload: give hpa bounds or replicas, not both")
    containers = _parse_containers(fields) if fields.has("containers") else ()
    if replicas is None and hpa is None and not containers:
        fields.fail("", "says nothing to manage (give replicas, containers or hpa)")
    return DesiredWorkload(workload, replicas, containers, hpa, where)


def _parse_hpa(fields: Fields) -> HpaBounds:
    hpa = Fields(fields.mapping("hpa"), fields.source, fields.where("hpa"), _HPA_FIELDS)
    max_replicas = hpa.integer("maxReplicas", 1, MAX_REPLICAS)
    min_replicas = hpa.integer("minReplicas", 1, MAX_REPLICAS, default=1)
    if min_replicas > max_replicas:
        hpa.fail("minReplicas", f"{min_replicas} is more than maxReplicas {max_replicas}")
    return HpaBounds(min_replicas, max_replicas, hpa.optional_integer("targetCPUUtilizationPercentage", 1, 1000))


def _parse_containers(fields: Fields) -> tuple[ContainerResources, ...]:
    raw = fields.mapping("containers")
    if not raw:
        fields.fail("containers", "is empty")
    out = []
    for name, spec in raw.items():
        where = fields.where(f"containers.{name}")
        problem = dns_label_problem(name)
        if problem:
            raise InputError(fields.source, where, problem)
        container = Fields(spec, fields.source, where, {"requests", "limits"})
        requests, limits = container.requests_and_limits()
        out.append(ContainerResources(str(name), requests, limits))
    return tuple(out)


def _no_duplicates(workloads: Sequence[DesiredWorkload], source: str) -> None:
    seen: dict[Workload, str] = {}
    for item in workloads:
        if item.workload in seen:
            raise InputError(source, f"{item.where}.name",
                             f"{item.workload.ref} is already listed at {seen[item.workload]}")
        seen[item.workload] = item.where


# --------------------------------------------------------------------------- the seed's flags
def parse_workload_flag(text: str, where: str) -> DesiredWorkload:
    """`KIND:NAME:REPLICAS` (the seed's `--workload=Deployment:web:2`); KIND may be omitted (`web:2`)."""
    parts = text.split(":")
    if len(parts) == 2 and parts[0] not in WORKLOAD_KINDS:
        parts = ["Deployment", *parts]
    if len(parts) != 3:
        raise InputError("arguments", where, f"{text!r} is not KIND:NAME:REPLICAS (e.g. Deployment:web:2)")
    kind, name, count = parts
    if kind not in WORKLOAD_KINDS:
        raise InputError("arguments", where, f"kind {kind!r} is not supported (use {' or '.join(WORKLOAD_KINDS)})")
    problem = dns_label_problem(name)
    if problem:
        raise InputError("arguments", where, problem)
    if not count.isdigit() or int(count) > MAX_REPLICAS:
        raise InputError("arguments", where, f"replicas {count!r} must be a whole number from 0 to {MAX_REPLICAS}")
    return DesiredWorkload(Workload(kind, name), int(count), (), None, where)


def from_flags(target: str | None, namespace: str | None, workloads: Sequence[str],
               context: str | None = None) -> DesiredState:
    """The desired state the seed's `--target --namespace --workload...` flags describe."""
    for flag, value in (("--target", target), ("--namespace", namespace)):
        if value is None:
            raise InputError("arguments", flag, "is required (or give --desired=FILE)")
        problem = dns_label_problem(value)
        if problem:
            raise InputError("arguments", flag, problem)
    if not workloads:
        raise InputError("arguments", "--workload", "give at least one --workload=KIND:NAME:REPLICAS")
    parsed = tuple(parse_workload_flag(text, f"--workload[{i}]") for i, text in enumerate(workloads))
    _no_duplicates(parsed, "arguments")
    assert target is not None and namespace is not None
    return DesiredState("arguments", target, namespace, context, parsed)


def desired_from(desired: str | None, target: str | None, namespace: str | None,
                 workloads: Sequence[str] | None, context: str | None = None) -> DesiredState:
    """A file (`desired`), or the seed's flags; not both. `target`/`namespace` given with a file must match it."""
    if desired is None:
        return from_flags(target, namespace, workloads or (), context)
    if workloads:
        raise InputError("arguments", "--workload", "give --desired=FILE or --workload flags, not both")
    state = load_desired(Path(desired))
    for flag, given, value in (("--target", target, state.target), ("--namespace", namespace, state.namespace)):
        if given is not None and given != value:
            raise InputError("arguments", flag, f"{given!r} does not match {value!r} in {desired}")
    return state
