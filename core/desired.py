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
from core.fields import CONTEXT, NAME, Entries, Field, Fields, Integer, Items, Quantities, Record, Text
from core.hints import HPA_REPLICAS
from core.k8s import MAX_REPLICAS, WORKLOAD_KINDS, context_problem, decimal_integer, dns_label_problem, shown
from core.plan import CPU_PERCENT, KIND, HpaBounds, Workload
from core.safeyaml import load_one

MAX_WORKLOADS = 1_000
_HPA = Record({"minReplicas": Field(HPA_REPLICAS, default=1), "maxReplicas": Field(HPA_REPLICAS, required=True),
               "targetCPUUtilizationPercentage": Field(CPU_PERCENT)})
_CONTAINER = Record({"requests": Field(Quantities()), "limits": Field(Quantities())})
_WORKLOAD = Record({
    "kind": KIND,
    "name": Field(NAME, required=True),
    "replicas": Field(Integer(0, MAX_REPLICAS)),
    "containers": Field(Entries(NAME, _CONTAINER)),
    "hpa": Field(_HPA),
    "description": Field(Text()),
})
_DESIRED = Record({
    "target": Field(NAME, required=True),
    "namespace": Field(NAME, required=True),
    "context": Field(CONTEXT),
    "workloads": Field(Items(_WORKLOAD.schema(), MAX_WORKLOADS), required=True),
    "description": Field(Text()),
})


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
    top = _DESIRED.open(document, source, "")
    raw = top.items("workloads")
    if not raw:
        top.fail("workloads", "is empty; list at least one workload")
    workloads = tuple(_parse_workload(item, source, f"workloads[{i}]") for i, item in enumerate(raw))
    _no_duplicates(workloads, source)
    return DesiredState(source, top.string("target"), top.string("namespace"), top.optional_string("context"),
                        workloads)


def _parse_workload(raw: Any, source: str, where: str) -> DesiredWorkload:
    fields = _WORKLOAD.open(raw, source, where)
    workload = Workload(fields.string("kind"), fields.string("name"))
    replicas = fields.optional_integer("replicas")
    hpa_fields = fields.optional_nested("hpa")
    hpa = _parse_hpa(hpa_fields) if hpa_fields is not None else None
    if hpa is not None and replicas is not None:
        fields.fail("replicas", "an HPA sizes this workload: give hpa bounds or replicas, not both")
    containers = tuple(ContainerResources(name, *container.requests_and_limits())
                       for name, container in fields.entries("containers"))
    if replicas is None and hpa is None and not containers:
        fields.fail("", "says nothing to manage (give replicas, containers or hpa)")
    return DesiredWorkload(workload, replicas, containers, hpa, where)


def _parse_hpa(hpa: Fields) -> HpaBounds:
    max_replicas, min_replicas = hpa.integer("maxReplicas"), hpa.integer("minReplicas")
    if min_replicas > max_replicas:
        hpa.fail("minReplicas", f"{min_replicas} is more than maxReplicas {max_replicas}")
    return HpaBounds(min_replicas, max_replicas, hpa.optional_integer("targetCPUUtilizationPercentage"))


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
        raise InputError("arguments", where, f"{shown(text)} is not KIND:NAME:REPLICAS (e.g. Deployment:web:2)")
    kind, name, count = parts
    if kind not in WORKLOAD_KINDS:
        raise InputError("arguments", where, f"kind {shown(kind)} is not supported (use {' or '.join(WORKLOAD_KINDS)})")
    problem = dns_label_problem(name)
    if problem:
        raise InputError("arguments", where, problem)
    replicas = decimal_integer(count, 0, MAX_REPLICAS)
    if replicas is None:
        raise InputError("arguments", where, f"replicas {shown(count)} must be a whole number from 0 to {MAX_REPLICAS}")
    return DesiredWorkload(Workload(kind, name), replicas, (), None, where)


def from_flags(target: str | None, namespace: str | None, workloads: Sequence[str],
               context: str | None = None) -> DesiredState:
    """The desired state the seed's `--target --namespace --workload...` flags describe."""
    for flag, value in (("--target", target), ("--namespace", namespace)):
        if value is None:
            raise InputError("arguments", flag, "is required (or give --desired=FILE)")
        problem = dns_label_problem(value)
        if problem:
            raise InputError("arguments", flag, problem)
    problem = context_problem(context) if context is not None else None
    if problem:
        raise InputError("arguments", "--context", problem)
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
            raise InputError("arguments", flag, f"{shown(given)} does not match {shown(value)} in {desired}")
    return state
