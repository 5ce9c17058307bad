"""The small interfaces a lifecycle runs over. The Prefect implementations (tasks/, flows/shared.py) run each
method as a task with its retry policy; the CLI preview and the unit tests bring their own."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from core.conventions import Flow
from core.gate import GateDecision, GateRequirement
from core.plan import Plan
from core.record import ApplyRecord, Saved
from core.report import RunReport, StepResult
from core.steps import Step

Objects = list[dict[str, Any]]
Saving = Callable[[], Saved]
"""A record save under way: calling it waits for the save and returns (or raises) what `Records.save` would."""
Loading = Callable[[], tuple[ApplyRecord | None, str]]
"""A record read under way: calling it waits for the read and returns (or raises) what `Records.load` would."""


class Refused(Exception):
    """A gate or the lock said no: the run prints `Refusing to execute: <reason>.` and changes nothing."""

    def __init__(self, reason: str, lines: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lines = tuple(lines)


class Cluster(Protocol):
    def capture(self, plan: Plan) -> Objects:
        """Every workload and HPA the plan could touch, as they are now."""

    def run_steps(self, plan: Plan, steps: Sequence[Step], group_of: Callable[[Step], str],
                  on_wave: Callable[[list[StepResult]], None], fence: Callable[[], None]) -> list[StepResult]:
        """Run the steps (one group's in order, groups side by side, wave by wave); after a failed step the rest
        of its group is skipped. `on_wave` sees each wave's results before the next wave starts. `fence` (the
        lock's `proceed`) runs before each wave and before each retry of a step: a run that lost the lock sends
        nothing more, and one asked to stop (Stopped) starts no new wave, but still confirms a write in flight;
        the Stopped raised says how many of the steps had run."""

    def verify(self, plan: Plan, steps: Sequence[Step], timeout_s: float,
               listing: Objects | None = None) -> list[StepResult]:
        """Run `rollout status` steps, each result failed on a timeout or a missed progress deadline. A
        Deployment that `listing` (the objects as read after the changes) shows rolled out needs no call."""

    def stamp(self, plan: Plan, refs: Sequence[str], record: str) -> None:
        """Annotate the objects (`deployment/web`, `hpa/web`) with RECORD_ANNOTATION=`record`, a kubectl call per
        batch, transient failures retried; raises TemporaryError or PermanentError when that did not succeed."""


class Records(Protocol):
    def load(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        """The plan's record (cluster first, then the mirror) and where it came from; raises if unreadable."""

    def from_file(self, plan: Plan, path: Path) -> ApplyRecord:
        """A saved copy of the record (--from-record), once it verifies and passes the content checks; raises
        RecordUnreadable (RecordCorrupt) naming the file."""

    def start_load(self, plan: Plan) -> Loading:
        """`load`, under way while the caller goes on (an implementation without concurrency reads at once)."""

    def load_for_preview(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        """Like `load`, but an unreachable cluster falls back to the mirror (a preview needs no cluster)."""

    def save(self, plan: Plan, record: ApplyRecord) -> Saved:
        """Store the record atomically in the cluster (the source of truth), compare-and-swap on
        `record.revision`, then mirror it next to the plan, both signed; returns the stored revision, and a note
        when only the mirror could not be written (the cluster record is what counts)."""

    def start_save(self, plan: Plan, record: ApplyRecord) -> Saving:
        """`save`, under way while the caller goes on (an implementation without concurrency saves at once)."""

    def run_id(self) -> str:
        """The id of the run an apply record names: its Prefect flow run id when there is one, else a uuid."""


@dataclass(frozen=True)
class Scheduled:
    """The rollback run scheduled at a time-boxed apply's expiry."""

    run_id: str
    at: datetime
    url: str | None
    """Its page in the Prefect UI, when a UI is known."""


class Expiries(Protocol):
    """The rollbacks scheduled at the expiry of time-boxed applies (flow runs of the target's infra-rollback
    deployment)."""

    def problem(self, plan: Plan) -> str | None:
        """Why a rollback of this plan could not be scheduled now (no Prefect server, no deployment), or None."""

    def schedule(self, plan: Plan, pr: int, repository: str | None, digest: str, at: datetime) -> Scheduled:
        """A run of the target's infra-rollback deployment, in a Scheduled state at `at`, naming the plan's
        record and its `digest`."""

    def cancel(self, plan: Plan, why: str) -> list[str]:
        """Cancel the runs still scheduled for this plan's record (a re-apply, a manual rollback); returns a
        `note:` line per run cancelled, or saying what could not be."""


class Gate(Protocol):
    def check(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        """The label gate, and that the plan here is the file the PR carries."""

    def recheck(self, requirement: GateRequirement, first: GateDecision) -> GateDecision:
        """Right before the first change: the same head, the same plan blob, the label still there."""


class Held(Protocol):
    """The lock while it is held: renewed in the background, checked before each wave of changes."""

    release_error: str | None
    """Set after the block when giving the lock up failed (it then expires by itself)."""

    def check(self) -> None:
        """Raises LeaseLost once the lock may no longer be ours: taken by another run, or gone unrenewed long
        enough that a takeover may come before a write begun now lands (a process paused by SIGSTOP finds so
        on resume), unless a renewal made now confirms it. The run stops before its next write."""

    def proceed(self) -> None:
        """`check()`, then raises Stopped if the run was asked to stop (SIGTERM, SIGINT): before each wave."""

    def let_go(self) -> None:
        """The run needs the lock no longer (its record is final): giving it up begins now, beside what the run
        does next (publishing its report), and the block's end waits for it. No `check()` after this."""


class Lock(Protocol):
    def hold(self, plan: Plan, holder: str) -> AbstractContextManager[Held]:
        """The target's lock for the duration of the block; raises Refused when it cannot be had in time."""


class Reporter(Protocol):
    def report(self, flow: Flow, plan: Plan, results: Sequence[StepResult], executed: bool, lines: Sequence[str],
               requirement: GateRequirement | None) -> RunReport:
        """Publish the results (log, artifacts, and the PR after an execution) and return the run's report."""

    def fail(self, flow: Flow, plan: Plan, reason: str, lines: Sequence[str],
             requirement: GateRequirement) -> RunReport:
        """A run the cluster stopped (unreachable, or refusing it): say why in the log, an artifact and on the
        PR, leave the trigger label on for a retry, and return a failed report whose last line says why."""


@dataclass(frozen=True)
class Execution:
    """What a run that changes the cluster needs beyond a preview's plan, records and reporter."""

    cluster: Cluster
    gate: Gate
    lock: Lock
    requirement: GateRequirement | None
    """What the gate checks; None when no PR was given (the run is then refused)."""
