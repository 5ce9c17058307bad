"""Scale: load the desired state -> read the live state -> diff -> write the plan -> open or update the PR ->
report. It only reads the cluster. Without `pull_requests` it is the dry run: the plan is written, no PR."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from core.conventions import PLAN_FILE
from core.desired import DesiredState
from core.diff import Diff, diff
from core.plan import Plan
from core.plan_writer import scale_report
from core.report import RunReport


@dataclass(frozen=True)
class WrittenPlan:
    plan: Plan
    files: Mapping[str, str]
    """{file name: text}, `plan.yaml` first."""
    live: tuple[Mapping[str, Any], ...] = ()
    """The live objects the plan was written against (its reviewers' `before` column)."""


@dataclass(frozen=True)
class PullRequestOutcome:
    number: int
    url: str
    branch: str
    created: bool
    committed: tuple[str, ...]
    """Repository paths committed by this call (empty when the PR already held these exact files)."""
    blocked: str | None = None
    """Why the open PR was left untouched (its plan was applied and not rolled back), or None."""


class LiveState(Protocol):
    def read(self, state: DesiredState) -> list[dict[str, Any]]:
        """The namespace's workloads and HPAs, as they are now."""


class PlanFiles(Protocol):
    def write(self, state: DesiredState, changes: Diff, plans_dir: str, day: date) -> WrittenPlan:
        """plan.yaml and previous-*.yaml into `<plans_dir>/<target>/`, atomically, validated by loading them."""


class PullRequests(Protocol):
    def publish(self, state: DesiredState, written: WrittenPlan, plans_dir: str, base: str,
                notes: tuple[str, ...], day: date) -> PullRequestOutcome:
        """Commit the plan files to the target's branch and open its PR, or update the open one."""


class ScaleReporter(Protocol):
    def report(self, state: DesiredState, written: WrittenPlan | None, report: RunReport) -> None:
        """Log the report and publish the planned steps as artifacts."""


@dataclass(frozen=True)
class Scale:
    """infra-scale: desired sizes in, a plan (and with `pull_requests`, a reviewed PR) out."""

    desired: str | None
    target: str | None
    namespace: str | None
    workloads: Sequence[str]
    plans_dir: str
    base: str
    load: Callable[[str | None, str | None, str | None, list[str] | None], DesiredState]
    live: LiveState
    plans: PlanFiles
    reporter: ScaleReporter
    pull_requests: PullRequests | None = None

    def run(self) -> RunReport:
        day = datetime.now(UTC).date()
        executed = self.pull_requests is not None
        state = self.load(self.desired, self.target, self.namespace, list(self.workloads))
        changes = diff(state, self.live.read(state))
        if changes.empty:
            report = scale_report(state, changes, None, None, executed)
            self.reporter.report(state, None, report)
            return report
        written = self.plans.write(state, changes, self.plans_dir, day)
        pull_request = self.pull_requests.publish(state, written, self.plans_dir, self.base, changes.notes, day) \
            if self.pull_requests is not None else None
        report = scale_report(state, changes, written.plan, f"{self.plans_dir}/{state.target}/{PLAN_FILE}", executed,
                              asdict(pull_request) if pull_request is not None else None)
        self.reporter.report(state, written, report)
        return report
