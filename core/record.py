"""The apply record: which steps ran, with before/after state, command, attempts, timings and errors.

Helm keeps a release record per revision inside the cluster; we keep one record per plan, inside the cluster
(ConfigMaps in the plan's namespace, integrations/records.py) and mirrored next to the plan. Every state
transition is a field change here, so a crash at any point leaves a record that says exactly how far the run got.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from core.conventions import RECORD_ANNOTATION as RECORD_ANNOTATION
from core.conventions import RECORD_NAME_PREFIX
from core.conventions import STAMP_FIELD_MANAGER as STAMP_FIELD_MANAGER
from core.errors import RecordUnreadable as RecordUnreadable  # raised by integrations.records
from core.k8s import shown
from core.plan import Plan

RECORD_VERSION = 2
"""Version 2 binds a record to what produced it (PR, head, file digests, run id), keeps each step's action in full
and chains the PR's applies. Version-1 records carry none of that and no signature: they are named, never acted
on (docs/security.md, "Records")."""
MAX_CHAIN = 8
"""Applies of one plan path on one PR a record keeps (each with its own prior states); a ninth is refused until
the PR is rolled back, so a record's size stays bounded by its plan's (integrations.records.max_record_bytes)."""

ANY_REVISION = "*"
"""The revision of a record the operator chose (--from-record): its save replaces whatever is stored."""


@dataclass(frozen=True)
class Saved:
    """What a save left: the stored copy's resourceVersion (the next write's precondition), and a note (the
    mirror could not be written, say)."""

    revision: str | None
    note: str | None = None
    digest: str | None = None
    """sha256 of the signed record as stored: what the run's provenance names."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_digest(plan: Plan) -> str:
    """The digest of the bytes the plan was parsed from (never the disk again)."""
    return file_digest(plan.data)


def record_name(plan: Plan) -> str:
    """The ConfigMap name of a plan's record: stable per namespace and plan (however its path is spelled), a
    valid DNS label."""
    identity = f"{plan.namespace}\n{plan.repository_path}"
    return f"{RECORD_NAME_PREFIX}{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class StepRecord:
    number: int
    action: str
    obj: str
    command: str
    status: str = "pending"
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float = 0.0
    error: str | None = None
    before: Any = None
    after: Any = None
    spec: Mapping[str, Any] = field(default_factory=dict)
    """The action in full (core.record_check.action_data): a rollback reverses what was applied from this, never
    from the plan as it is now."""


@dataclass(frozen=True)
class RollbackRecord:
    """The last rollback of this record: per apply-step number, what it did (reversed, drifted, ...)."""

    status: str
    started_at: str
    finished_at: str | None = None
    steps: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyRecord:
    plan: str
    namespace: str
    target: str | None
    digest: str
    status: str  # running, succeeded, failed, rolled-back
    started_at: str
    steps: tuple[StepRecord, ...]
    pr: int | None = None
    head_sha: str | None = None
    finished_at: str | None = None
    rollback: RollbackRecord | None = None
    run_id: str = ""
    """The apply's run: its Prefect flow run id when there is one, else a uuid."""
    files: Mapping[str, str] = field(default_factory=dict)
    """sha256 of every file the run read, by repository path: the plan (`digest` too), its HPA manifests and
    hint files."""
    expires_at: str | None = None
    """A time-boxed apply (the plan's `expires`): when its scheduled rollback is due, UTC. Only a record that
    names it may be rolled back without the `rollback-plan` label, by the run scheduled for it."""
    earlier: tuple["ApplyRecord", ...] = ()
    """The same PR's earlier applies of this plan path, oldest first, each with its own prior states; a rollback
    reverses this record, then these newest first, back to the state before the PR's first apply."""
    version: int = RECORD_VERSION
    revision: str | None = field(default=None, compare=False)
    """The resourceVersion of the stored copy this record was read as or last saved as (not stored): the next
    write is a compare-and-swap on it."""

    def step(self, number: int) -> StepRecord:
        return self.steps[number - 1]

    def with_step(self, updated: StepRecord) -> "ApplyRecord":
        steps = list(self.steps)
        steps[updated.number - 1] = updated
        return replace(self, steps=tuple(steps))

    @property
    def chain(self) -> tuple["ApplyRecord", ...]:
        """Every apply of the chain, newest (this one) first: the order a rollback reverses them in."""
        return (self, *reversed(self.earlier))

    def to_json(self, compact: bool = False) -> str:
        """The stored form: indented for the mirror a person may read, compact for the cluster."""
        return json.dumps(self.as_data(), indent=None if compact else 1, sort_keys=True,
                          separators=(",", ":") if compact else None)

    def as_data(self) -> dict[str, Any]:
        """What `dataclasses.asdict` gives (but `revision`), without its deep copy of every step's states
        (20,000 steps: 22 s instead of well under one; the states are plain JSON data already)."""
        data = _fields_of(self)
        del data["revision"]
        if data["expires_at"] is None:  # absent unless time-boxed: records stay readable by older workers
            del data["expires_at"]
        data["steps"] = [_fields_of(step) for step in self.steps]
        data["rollback"] = _fields_of(self.rollback) if self.rollback else None
        data["earlier"] = [link.as_data() for link in self.earlier]
        return data


def _fields_of(instance: Any) -> dict[str, Any]:
    return {item.name: getattr(instance, item.name) for item in fields(instance)}


def from_json(text: str) -> ApplyRecord:
    """Parse a stored record; raises ValueError, in one line, on anything that is not a whole record of this
    version (unknown version, a missing or mistyped field, no steps)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"not JSON ({error})") from None
    return from_data(data)


def from_data(data: Any) -> ApplyRecord:
    if not isinstance(data, dict):
        raise ValueError("not an infra-orchestrator apply record")
    version = data.get("version")
    if version != RECORD_VERSION:
        older = " (written before records were bound and signed)" if version == 1 else ""
        raise ValueError(f"record version {shown(version)}{older} is not one this version reads "
                         f"({RECORD_VERSION})")
    return _record(data, "record", nested=True)


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "dict": (dict,),
                                       "list": (list,)}


def _get(data: Mapping[str, Any], key: str, where: str, kind: str, optional: bool = False) -> Any:
    if key not in data:
        if optional:
            return None
        raise ValueError(f"{where}: missing field {key!r}")
    value = data[key]
    if value is None and optional:
        return None
    if not isinstance(value, _TYPES[kind]) or isinstance(value, bool):
        raise ValueError(f"{where}.{key}: expected {kind}, got {type(value).__name__}")
    return value


def _known(data: Mapping[str, Any], allowed: type, where: str) -> None:
    unknown = sorted(set(data) - {item.name for item in fields(allowed)})
    if unknown:
        raise ValueError(f"{where}: unknown field {shown(unknown[0])}")


def _step(data: Any, where: str) -> StepRecord:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not an object")
    _known(data, StepRecord, where)
    return StepRecord(
        number=_get(data, "number", where, "int"), action=_get(data, "action", where, "str"),
        obj=_get(data, "obj", where, "str"), command=_get(data, "command", where, "str"),
        status=_get(data, "status", where, "str"), attempts=_get(data, "attempts", where, "int"),
        started_at=_get(data, "started_at", where, "str", optional=True),
        finished_at=_get(data, "finished_at", where, "str", optional=True),
        duration_ms=float(_get(data, "duration_ms", where, "float")),
        error=_get(data, "error", where, "str", optional=True),
        before=data.get("before"), after=data.get("after"), spec=_get(data, "spec", where, "dict"))


def _rollback(data: Any, where: str) -> RollbackRecord | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not an object")
    _known(data, RollbackRecord, where)
    steps = _get(data, "steps", where, "dict")
    if not all(isinstance(value, str) for value in steps.values()):
        raise ValueError(f"{where}.steps: expected strings")
    return RollbackRecord(status=_get(data, "status", where, "str"), started_at=_get(data, "started_at", where, "str"),
                          finished_at=_get(data, "finished_at", where, "str", optional=True), steps=dict(steps))


def _record(data: Any, where: str, nested: bool) -> ApplyRecord:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not an object")
    _known(data, ApplyRecord, where)
    if data.get("version") != RECORD_VERSION:
        raise ValueError(f"{where}: record version {shown(data.get('version'))} is not {RECORD_VERSION}")
    steps = tuple(_step(step, f"{where}.steps[{index}]")
                  for index, step in enumerate(_get(data, "steps", where, "list")))
    if not steps:
        raise ValueError(f"{where}: has no steps")
    if [step.number for step in steps] != list(range(1, len(steps) + 1)):
        raise ValueError(f"{where}.steps: not numbered 1 to {len(steps)} in order")
    files = _get(data, "files", where, "dict")
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in files.items()):
        raise ValueError(f"{where}.files: expected file digests")
    earlier = _get(data, "earlier", where, "list")
    if earlier and not nested:
        raise ValueError(f"{where}.earlier: an earlier apply holds no chain of its own")
    if len(earlier) >= MAX_CHAIN:
        raise ValueError(f"{where}.earlier: more than {MAX_CHAIN} applies")
    return ApplyRecord(
        plan=_get(data, "plan", where, "str"), namespace=_get(data, "namespace", where, "str"),
        target=_get(data, "target", where, "str", optional=True), digest=_get(data, "digest", where, "str"),
        status=_get(data, "status", where, "str"), started_at=_get(data, "started_at", where, "str"), steps=steps,
        pr=_get(data, "pr", where, "int", optional=True), head_sha=_get(data, "head_sha", where, "str", optional=True),
        finished_at=_get(data, "finished_at", where, "str", optional=True),
        rollback=_rollback(data.get("rollback"), f"{where}.rollback"), run_id=_get(data, "run_id", where, "str"),
        files=dict(files), expires_at=_get(data, "expires_at", where, "str", optional=True),
        earlier=tuple(_record(link, f"{where}.earlier[{index}]", nested=False) for index, link in enumerate(earlier)))
