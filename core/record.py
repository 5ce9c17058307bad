"""The apply record: which steps ran, with before/after state, command, attempts, timings and errors.

Helm keeps a release record per revision inside the cluster; we keep one record per plan, inside the cluster
(ConfigMaps in the plan's namespace, integrations/records.py) and mirrored next to the plan. Every state
transition is a field change here, so a crash at any point leaves a record that says exactly how far the run got.
"""

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from core.conventions import RECORD_NAME_PREFIX
from core.errors import RecordUnreadable as RecordUnreadable  # raised by integrations.records
from core.plan import Plan

RECORD_VERSION = 1
RECORD_ANNOTATION = "infra-orchestrator.io/record"
"""Stamped by apply on every object it changes, naming the record (`record_name`): an object that carries it was
changed by us, so a rollback that finds no readable record for it must refuse rather than guess."""
STAMP_FIELD_MANAGER = "infra-orchestrator-stamp"
"""The stamp's field manager: the API server's managedFields, its audit log and a request log tell the stamp's
PATCH from a step's."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plan_digest(plan: Plan) -> str:
    return hashlib.sha256(plan.path.read_bytes()).hexdigest()


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
    version: int = RECORD_VERSION

    def step(self, number: int) -> StepRecord:
        return self.steps[number - 1]

    def with_step(self, updated: StepRecord) -> "ApplyRecord":
        steps = list(self.steps)
        steps[updated.number - 1] = updated
        return replace(self, steps=tuple(steps))

    def to_json(self, compact: bool = False) -> str:
        """The stored form: indented for the mirror a person may read, compact for the cluster."""
        if compact:
            return json.dumps(self._as_data(), sort_keys=True, separators=(",", ":"))
        return json.dumps(self._as_data(), indent=1, sort_keys=True)

    def _as_data(self) -> dict[str, Any]:
        """What `dataclasses.asdict` gives, without its deep copy of every step's states (20,000 steps: 22 s
        instead of well under one; the states are plain JSON data already)."""
        data = _fields_of(self)
        data["steps"] = [_fields_of(step) for step in self.steps]
        data["rollback"] = _fields_of(self.rollback) if self.rollback else None
        return data


def _fields_of(instance: Any) -> dict[str, Any]:
    return {item.name: getattr(instance, item.name) for item in fields(instance)}


def from_json(text: str) -> ApplyRecord:
    """Parse a stored record; raises ValueError on anything that is not a record of this version."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        raise ValueError("not an infra-orchestrator apply record of version 1")
    try:
        rollback = data.pop("rollback", None)
        steps = tuple(StepRecord(**step) for step in data.pop("steps"))
        return ApplyRecord(**data, steps=steps, rollback=RollbackRecord(**rollback) if rollback else None)
    except (TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"not a well-formed apply record: {error}") from None
