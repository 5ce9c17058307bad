"""Small in-memory stand-ins for the lifecycle's interfaces: a cluster that carries out scale and HPA steps on
dicts, records in a dict, a gate that answers as told, a lock that is always free, a reporter that only builds."""

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from yaml import safe_load

from cli.adapters import SummaryReporter
from core.batch import Batch, BatchRun
from core.errors import LeaseLost, RecordUnreadable
from core.executor import C, run_steps
from core.gate import GateDecision, GateRequirement
from core.lifecycle.ports import Execution, Loading, Objects, Saving
from core.plan import Plan, load_plan
from core.record import ANY_REVISION, RECORD_ANNOTATION, ApplyRecord, Saved, from_data
from core.report import StepResult
from core.steps import Step
from core.vocabulary import StepStatus

T = TypeVar("T")

NAMESPACE = "shop"
PLAN = f"""\
namespace: {NAMESPACE}
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
  - {{type: scale_workload, name: api, replicas: 3}}
  - {{type: apply_hpa, name: web, minReplicas: 4, maxReplicas: 8}}
"""


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app"}]}}}}


@dataclass
class FakeCluster:
    """Deployments and HPAs as dicts. `failing` holds (verb, object) pairs whose step fails."""

    objects: list[dict[str, Any]]
    failing: set[tuple[str, str]] = field(default_factory=set)
    ran: list[tuple[str, ...]] = field(default_factory=list)
    waves_seen: list[list[int]] = field(default_factory=list)
    stamps: list[tuple[int, list[str]]] = field(default_factory=list)
    """Each stamp call: how many steps had run before it, and the refs it annotated."""
    directory: Path = Path(".")
    """Where the plan's manifest files are."""
    stamp_errors: list[Exception | None] = field(default_factory=list)
    """What the next stamp calls raise, in order (None: that call succeeds); later calls succeed."""

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    def capture(self, plan: Plan) -> list[dict[str, Any]]:
        return json.loads(json.dumps(self.objects))  # type: ignore[no-any-return]

    def _carry_out(self, step: Step) -> str | None:
        """The step's effect on the objects, or its error."""
        self.ran.append(step.args)
        if (step.args[0], step.obj or "") in self.failing:
            return f"{step.args[0]} {step.obj}: forbidden"
        if step.args[0] == "scale":
            target = self.find("Deployment", step.args[1].removeprefix("deployment/"))
            flags = dict(arg.removeprefix("--").split("=") for arg in step.args[2:])
            if target is None or ("current-replicas" in flags
                                  and int(flags["current-replicas"]) != target["spec"]["replicas"]):
                return "precondition failed"
            target["spec"]["replicas"] = int(flags["replicas"])
        elif step.args[:2] == ("delete", "hpa"):
            self.objects = [o for o in self.objects if (o["kind"], o["metadata"]["name"]) !=
                            ("HorizontalPodAutoscaler", step.args[2])]
        elif step.args[1:2] == ("-f",):  # a manifest on stdin, or a file next to the plan
            manifest = json.loads(step.stdin) if step.args[2:] == ("-",) else safe_load(
                (self.directory / step.args[2]).read_text())
            self.objects = [o for o in self.objects if (o["kind"], o["metadata"]["name"]) !=
                            (manifest["kind"], manifest["metadata"]["name"])] + [manifest]
        return None

    def run_steps(self, plan: Plan, steps: Sequence[Step], group_of: Callable[[Step], str],
                  on_wave: Callable[[list[StepResult]], None], fence: Callable[[], None]) -> list[StepResult]:
        def seen(results: list[StepResult]) -> None:
            self.waves_seen.append([result.step.number for result in results])
            on_wave(results)

        return run_steps(FakeCalls(self), steps, group_of, seen, fence, call_timeout_s=60.0)

    def verify(self, plan: Plan, steps: Sequence[Step], timeout_s: float,
               listing: Objects | None = None) -> list[StepResult]:
        return [StepResult(step, StepStatus.SUCCEEDED, attempts=1) for step in steps]

    def stamp(self, plan: Plan, refs: Sequence[str], record: str) -> None:
        error = self.stamp_errors.pop(0) if self.stamp_errors else None
        if error is not None:
            raise error
        self.stamps.append((len(self.ran), list(refs)))
        for ref in refs:
            kind, name = ref.split("/")
            target = self.find({"deployment": "Deployment", "hpa": "HorizontalPodAutoscaler"}[kind], name)
            assert target is not None, f"stamped {ref}, which does not exist"
            target["metadata"].setdefault("annotations", {})[RECORD_ANNOTATION] = record


@dataclass(frozen=True)
class Done(Generic[T]):
    """A call that ended as soon as it was made."""

    value: T

    def result(self) -> T:
        return self.value


@dataclass(frozen=True)
class FakeCalls:
    """The core executor's calls, carried out on the fake cluster at once, in the order they are made. A shared
    call does its steps one after another and confirms those that succeeded; the executor runs the others alone
    again, as it does after a real kubectl call that failed part way."""

    cluster: FakeCluster

    def _result(self, step: Step) -> StepResult:
        error = self.cluster._carry_out(step)
        return StepResult(step, StepStatus.FAILED if error else StepStatus.SUCCEEDED, attempts=1, error=error)

    def alone(self, step: Step, fence: Callable[[], None], earlier_attempts: int) -> Done[StepResult]:
        return Done(self._result(step))

    def shared(self, batch: Batch, timeout_s: float) -> Done[BatchRun]:
        done = tuple(step for step in batch.steps if self._result(step).ok)
        return Done(BatchRun(batch, done, 0.0, None if len(done) == len(batch.steps) else "failed"))

    def rollout(self, step: Step, timeout_s: float) -> Done[StepResult]:
        return Done(StepResult(step, StepStatus.SUCCEEDED, attempts=1))

    def from_status(self, step: Step, timeout_s: float) -> Done[StepResult]:
        return self.rollout(step, timeout_s)

    def completed(self, calls: Sequence[C]) -> Iterator[C]:
        return iter(calls)


@dataclass
class FakeRecords:
    stored: dict[str, ApplyRecord] = field(default_factory=dict)
    saves: list[ApplyRecord] = field(default_factory=list)
    unreadable: str | None = None
    """Names a copy of the record that exists but cannot be read: `load` raises RecordUnreadable."""
    started: int = 0
    waited: int = 0
    """Saves begun with `start_save`, and those waited for (only then are they saved, as a save under way in
    another thread may not have landed before)."""

    def load(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        if self.unreadable is not None:
            raise RecordUnreadable(self.unreadable, "truncated JSON")
        record = self.stored.get(plan.path.as_posix())
        return record, "record read from memory" if record else "no apply record"

    def start_load(self, plan: Plan) -> Loading:
        return lambda: self.load(plan)  # read when waited for: after the capture, as a read under way may be

    def load_for_preview(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        return self.load(plan)

    def save(self, plan: Plan, record: ApplyRecord) -> Saved:
        """A compare-and-swap on the revision, as the cluster's record is written."""
        stored = self.stored.get(plan.path.as_posix())
        if record.revision not in (ANY_REVISION, stored.revision if stored is not None else None):
            raise LeaseLost(f"record written by someone else (revision {record.revision}, stored "
                            f"{stored.revision if stored else None})")
        saved = replace(record, revision=str(len(self.saves) + 1))
        self.stored[plan.path.as_posix()] = saved
        self.saves.append(saved)
        return Saved(saved.revision)

    def start_save(self, plan: Plan, record: ApplyRecord) -> Saving:
        self.started += 1

        def wait() -> Saved:
            self.waited += 1
            return self.save(plan, record)

        return wait

    def from_file(self, plan: Plan, path: Path) -> ApplyRecord:
        return from_data(json.loads(path.read_text()))

    def run_id(self) -> str:
        return "run-1"


@dataclass
class FakeGate:
    allowed: bool = True
    recheck_allowed: bool = True
    rechecks: int = 0

    def check(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        return GateDecision(self.allowed, "label ok" if self.allowed else "PR missing label", "abc1234", "b10b")

    def recheck(self, requirement: GateRequirement, first: GateDecision) -> GateDecision:
        self.rechecks += 1
        return replace(first, allowed=self.recheck_allowed, reason="a commit came after the label")


@dataclass
class HeldLock:
    """A lock that stays ours until `lose_after` checks (None: never lost)."""

    lose_after: int | None = None
    checks: int = 0
    release_error: str | None = None
    let_go_after: list[str] | None = None
    """What the run had done when it let the lock go (`done`'s entries then), or None while it holds it."""
    done: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.let_go_after is None, "checked after letting go"
        self.checks += 1
        if self.lose_after is not None and self.checks > self.lose_after:
            raise LeaseLost("lease infra-orchestrator-lock is held by another run")

    def proceed(self) -> None:
        self.check()

    def let_go(self) -> None:
        self.let_go_after = list(self.done)


class FreeLock:
    def __init__(self, held: HeldLock | None = None) -> None:
        self.holders: list[str] = []
        self.held = held or HeldLock()

    @contextmanager
    def hold(self, plan: Plan, holder: str) -> Iterator[HeldLock]:
        self.holders.append(holder)
        self.held.let_go_after = None
        yield self.held


@dataclass
class World:
    plan_path: Path
    cluster: FakeCluster
    records: FakeRecords = field(default_factory=FakeRecords)
    gate: FakeGate = field(default_factory=FakeGate)
    lock: FreeLock = field(default_factory=FreeLock)
    reporter: SummaryReporter = field(default_factory=SummaryReporter)

    def execution(self, pr: int | None = 7, flow: str = "apply") -> Execution:
        requirement = GateRequirement(flow=flow, pr=pr, plan_path="plan.yaml") if pr is not None else None
        return Execution(self.cluster, self.gate, self.lock, requirement)

    def load(self, path: str) -> Plan:
        return load_plan(Path(path))

    def replicas(self, name: str) -> int:
        found = self.cluster.find("Deployment", name)
        assert found is not None
        return int(found["spec"]["replicas"])
