"""kubectl as Prefect tasks: batched capture, steps in shared calls or alone (retried when transient), rollout
checks."""

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import task_run

from core import executor
from core.batch import Batch, BatchRun
from core.executor import VERIFY_GRACE_S, C, ReadFailed
from core.k8s import Kind
from core.plan import Plan
from core.report import StepResult
from core.settings import Settings
from core.steps import Step
from core.vocabulary import StepStatus
from integrations.kubectl import Kubectl, KubectlError, checked, get_items, let_land, run
from integrations.kubectl import kubectl_for as runner_for
from integrations.policy_read import get_with_policy
from tasks.passing import as_is
from tasks.retry import RETRIES, RETRY_DELAYS_S, is_transient

R = TypeVar("R")


def kubectl_for(plan: Plan) -> Kubectl:
    """kubectl for the plan's cluster: the flow run's settings (its process's environment), the plan's context,
    and the plan's directory as working directory so relative manifests resolve as they did in the preview."""
    return runner_for(Settings.from_env(os.environ), plan.context, plan.directory.resolve())


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def capture_objects(plan: Plan, kubectl: Kubectl) -> list[dict[str, Any]]:
    """Every workload and HPA the plan could touch, and the namespace's policy objects (core.policy), in one
    `kubectl get a,b,... -o json` for the namespace."""
    kinds = {action.workload.kind for action in plan.actions}
    resources = [Kind(kind).plural for kind in sorted(kinds)] + [Kind.HPA.plural]
    return get_with_policy(kubectl, plan.namespace, resources) if plan.actions else []


@task(cache_policy=NO_CACHE, task_run_name="{batch.title}")
def run_batch(namespace: str, kubectl: Kubectl, batch: Batch, timeout_s: float | None = None) -> BatchRun:
    """One kubectl call for several steps. Never retried as a whole: what it did not confirm runs step by step."""
    started = time.perf_counter()
    try:
        result = run(kubectl, namespace, batch.args, stdin=batch.stdin, timeout_s=timeout_s)
    except KubectlError as error:
        let_land(error.maybe_landed)  # the steps it did not confirm read their objects before they run alone
        return BatchRun(batch, (), time.perf_counter() - started, str(error))
    let_land(result.maybe_landed)
    if result.ok:  # kubectl exits 0 only when every object succeeded
        return BatchRun(batch, batch.steps, result.duration_s)
    return BatchRun(batch, tuple(batch.confirmed(result.stdout)), result.duration_s, result.message, result.stderr)


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient,
      task_run_name="step {step.number}: {step.summary}")
def execute_step(namespace: str, kubectl: Kubectl, step: Step, fence: Callable[[], None],
                 earlier_attempts: int = 0) -> StepResult:
    """Run one step (core.executor.run_alone); a failure raises KubectlError so that Prefect retries it only when
    transient. `earlier_attempts` counts a shared call (core.batch) that already tried this step and failed."""
    attempt = earlier_attempts + (task_run.run_count or 1)

    def send() -> float:
        try:
            return checked(run(kubectl, namespace, step.args, stdin=step.stdin)).duration_s
        except KubectlError as error:
            error.attempts = attempt
            let_land(error.maybe_landed and step.landing is not None)  # the retry reads the object first
            raise

    return executor.run_alone(step, attempt, fence, lambda: live_object(namespace, kubectl, step), send)


def live_object(namespace: str, kubectl: Kubectl, step: Step) -> list[dict[str, Any]]:
    """The object a step changes, as it is now (none when it does not exist)."""
    result = checked(run(kubectl, namespace, ["get", str(step.obj), "-o", "json", "--ignore-not-found"]))
    try:
        document = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        raise KubectlError(f"kubectl get {step.obj} did not print JSON", transient=True) from None
    return [document] if isinstance(document, dict) else []


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient,
      task_run_name="stamp {objects} objects")
def stamp_objects(namespace: str, kubectl: Kubectl, args: Sequence[str], stdin: str, objects: int) -> None:
    """One stamp call: metadata only, so no rollout. Retried when transient like any write, and blindly: an
    annotation that landed after a timeout is simply written again with the same value."""
    try:
        checked(run(kubectl, namespace, args, stdin=stdin))
    except KubectlError as error:
        error.attempts = task_run.run_count or 1
        raise


@task(cache_policy=NO_CACHE, task_run_name="verify {step.obj}")
def verify_rollout(namespace: str, kubectl: Kubectl, step: Step, timeout_s: float) -> StepResult:
    """`rollout status --timeout`: a timeout or a progress deadline is a failed step with kubectl's message."""
    started = time.perf_counter()
    try:
        result = run(kubectl, namespace, step.args, timeout_s=timeout_s + VERIFY_GRACE_S)
    except KubectlError as error:
        return StepResult(step, StepStatus.FAILED, attempts=1, duration_s=time.perf_counter() - started,
                          error=str(error))
    status = StepStatus.SUCCEEDED if result.ok else StepStatus.FAILED
    return StepResult(step, status, attempts=1, duration_s=result.duration_s,
                      error=None if result.ok else result.message)




@task(cache_policy=NO_CACHE, task_run_name="verify {step.obj} from status")
def verify_from_status(namespace: str, kubectl: Kubectl, step: Step, timeout_s: float) -> StepResult:
    """An OnDelete StatefulSet verified from its status (core.executor.verify_from_status)."""

    def read() -> list[dict[str, Any]]:
        try:
            return live_object(namespace, kubectl, step)
        except KubectlError as error:
            raise ReadFailed(str(error)) from None

    return executor.verify_from_status(step, read, timeout_s)


@task(cache_policy=NO_CACHE)
def list_deployments(namespace: str, kubectl: Kubectl) -> list[dict[str, Any]]:
    """The namespace's deployments, or none when the listing fails (each then gets its `rollout status`)."""
    try:
        return get_items(kubectl, namespace, [Kind.DEPLOYMENT.plural])
    except KubectlError:
        return []


@dataclass(frozen=True)
class Submitted(Generic[R]):
    """A task run under way, as the executor's `Call`: `read` turns its future into the call's result."""

    future: PrefectFuture[Any]
    read: Callable[[PrefectFuture[Any]], R]

    def result(self) -> R:
        return self.read(self.future)


def _returned(future: PrefectFuture[Any]) -> Any:
    return future.result()


def _step_outcome(step: Step) -> Callable[[PrefectFuture[Any]], StepResult]:
    """A step's task run as its result: a failure (raised after the task's retries) is a failed step."""

    def outcome(future: PrefectFuture[Any]) -> StepResult:
        future.wait()  # sets the final state locally; reading `.state` alone may ask the API, which lags behind
        if future.state.is_completed():
            return cast(StepResult, future.result())
        error = future.result(raise_on_failure=False)
        return StepResult(step, StepStatus.FAILED, attempts=getattr(error, "attempts", 1), error=str(error))

    return outcome


@dataclass(frozen=True)
class TaskCalls:
    """The executor's calls (core.executor.Calls) as Prefect task runs of kubectl on the plan's namespace."""

    namespace: str
    kubectl: Kubectl

    def alone(self, step: Step, fence: Callable[[], None], earlier_attempts: int) -> Submitted[StepResult]:
        future = execute_step.submit(self.namespace, self.kubectl, step, fence, earlier_attempts=earlier_attempts)
        return Submitted(future, _step_outcome(step))

    def shared(self, batch: Batch, timeout_s: float) -> Submitted[BatchRun]:
        return Submitted(run_batch.submit(self.namespace, self.kubectl, as_is(batch), timeout_s), _returned)

    def rollout(self, step: Step, timeout_s: float) -> Submitted[StepResult]:
        return Submitted(verify_rollout.submit(self.namespace, self.kubectl, step, timeout_s), _returned)

    def from_status(self, step: Step, timeout_s: float) -> Submitted[StepResult]:
        return Submitted(verify_from_status.submit(self.namespace, self.kubectl, step, timeout_s), _returned)

    def completed(self, calls: Sequence[C]) -> Iterator[C]:
        by_future = {cast("Submitted[Any]", call).future: call for call in calls}  # made by this class
        for future in as_completed(list(by_future)):
            yield by_future[future]

    def statefulsets(self, refs: Sequence[str]) -> list[dict[str, Any]]:
        try:
            document = json.loads(checked(run(self.kubectl, self.namespace, ["get", *refs, "-o", "json"])).stdout)
        except (KubectlError, json.JSONDecodeError):
            return []
        items = document.get("items", [document]) if isinstance(document, dict) else []
        return [item for item in items if isinstance(item, dict)]

    def deployments(self) -> list[dict[str, Any]]:
        return list_deployments(self.namespace, self.kubectl)

    def stamp(self, args: tuple[str, ...], stdin: str) -> Submitted[None]:
        return Submitted(stamp_objects.submit(self.namespace, self.kubectl, args, stdin, stdin.count("\n")),
                         _returned)


@dataclass(frozen=True)
class TaskCluster:
    """The lifecycle's cluster: the core executor, each call a Prefect task with kubectl's retry policy."""

    def capture(self, plan: Plan) -> list[dict[str, Any]]:
        return capture_objects(as_is(plan), kubectl_for(plan))

    def run_steps(self, plan: Plan, steps: Sequence[Step], group_of: Callable[[Step], str],
                  on_wave: Callable[[list[StepResult]], None], fence: Callable[[], None]) -> list[StepResult]:
        kubectl = kubectl_for(plan)
        return executor.run_steps(TaskCalls(plan.namespace, kubectl), steps, group_of, on_wave, fence,
                                  kubectl.timeout_s)

    def verify(self, plan: Plan, steps: Sequence[Step], timeout_s: float,
               listing: list[dict[str, Any]] | None = None) -> list[StepResult]:
        calls = TaskCalls(plan.namespace, kubectl_for(plan))
        return executor.verify_all(calls, calls, steps, timeout_s, listing)

    def stamp(self, plan: Plan, refs: Sequence[str], record: str) -> None:
        executor.stamp_all(TaskCalls(plan.namespace, kubectl_for(plan)).stamp, refs, record)
