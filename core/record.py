"""The apply record: which steps ran, with before/after state, command, attempts, timings and errors.

Helm keeps a release record per revision inside the cluster; we keep one record per plan, inside the cluster
(a ConfigMap in the plan's namespace) and mirrored next to the plan. Every state transition is a field change
here, so a crash at any point leaves a record that says exactly how far the run got.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from core.plan import Plan

RECORD_VERSION = 1
STEP_STATES = ("pending", "succeeded", "failed", "skipped", "unchanged")
"""Apply-side step states: `unchanged` is a step found already done when an interrupted apply was resumed."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plan_digest(plan: Plan) -> str:
    return hashlib.sha256(plan.path.read_bytes()).hexdigest()


def record_name(plan: Plan) -> str:
    """The ConfigMap name of a plan's record: stable per namespace and plan path, a valid DNS label."""
    identity = f"{plan.namespace}\n{plan.path.as_posix()}"
    return f"infra-record-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def from_json(text: str) -> ApplyRecord:
    """Parse a stored record; raises ValueError on anything that is not a record of this version."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        raise ValueError("not an infra-orchestrator apply record of version 1")
    rollback = data.pop("rollback", None)
    steps = tuple(StepRecord(**step) for step in data.pop("steps"))
    return ApplyRecord(**data, steps=steps, rollback=RollbackRecord(**rollback) if rollback else None)
