"""kubectl as Prefect tasks: batched capture, steps in shared calls or alone (retried when transient), rollout
checks."""

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import task_run

from core.batch import Batch, BatchRun, batches, waves
from core.landed import landed
from core.plan import Plan
from core.report import StepResult
from core.rollout import confirmed_by_listing
from core.steps import Step
from core.vocabulary import StepStatus
from integrations.kubectl import Kubectl, KubectlError, checked, get_items, run
from tasks.passing import as_is
from tasks.retry import RETRIES, RETRY_DELAYS_S, is_transient

_KIND_RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def kubectl_for(plan: Plan) -> Kubectl:
    """kubectl for the plan's cluster: `KUBECTL`/`KUBECONFIG` from the environment, the plan's context, and
    the plan's directory as working directory so relative manifests resolve as they did in the preview."""
    timeout = float(os.environ.get("INFRA_KUBECTL_TIMEOUT", "60"))
    return Kubectl(context=plan.context, cwd=plan.directory.resolve(), timeout_s=timeout)


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def capture_objects(plan: Plan, kubectl: Kubectl) -> list[dict[str, Any]]:
    """Every workload and HPA the plan could touch, in one `kubectl get a,b -o json` for the namespace."""
    kinds = {action.workload.kind for action in plan.actions}
    resources = [_KIND_RESOURCES[kind] for kind in sorted(kinds)] + ["horizontalpodautoscalers"]
    return get_items(kubectl, plan.namespace, resources) if plan.actions else []


@task(cache_policy=NO_CACHE, task_run_name="{batch.title}")
def run_batch(namespace: str, kubectl: Kubectl, batch: Batch, timeout_s: float | None = None) -> BatchRun:
    """One kubectl call for several steps. Never retried as a whole: what it did not confirm runs step by step."""
    started = time.perf_counter()
    try:
        result = run(kubectl, namespace, batch.args, stdin=batch.stdin, timeout_s=timeout_s)
    except KubectlError as error:
        return BatchRun(batch, (), time.perf_counter() - started, str(error))
    if result.ok:  # kubectl exits 0 only when every object succeeded
        return BatchRun(batch, batch.steps, result.duration_s)
    return BatchRun(batch, tuple(batch.confirmed(result.stdout)), result.duration_s, result.message, result.stderr)


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient,
      task_run_name="step {step.number}: {step.summary}")
def execute_step(namespace: str, kubectl: Kubectl, step: Step, earlier_attempts: int = 0) -> StepResult:
    """Run one step; a failure raises KubectlError so that Prefect retries it only when transient.

    `earlier_attempts` counts a shared call (core.batch) that already tried this step and failed. A step tried
    before (a retry, or after that shared call) first reads its object: a write whose answer was lost may have
    landed, and is then confirmed rather than sent twice."""
    attempt = earlier_attempts + (task_run.run_count or 1)
    started = time.perf_counter()
    if attempt > 1 and step.landing is not None and landed(step.landing, live_object(namespace, kubectl, step)):
        return StepResult(step, StepStatus.SUCCEEDED, attempts=attempt, duration_s=time.perf_counter() - started)
    try:
        result = checked(run(kubectl, namespace, step.args, stdin=step.stdin))
    except KubectlError as error:
        error.attempts = attempt
        raise
    return StepResult(step, StepStatus.SUCCEEDED, attempts=attempt, duration_s=result.duration_s)


def live_object(namespace: str, kubectl: Kubectl, step: Step) -> list[dict[str, Any]]:
    """The object a step changes, as it is now (none when it does not exist)."""
    result = checked(run(kubectl, namespace, ["get", str(step.obj), "-o", "json", "--ignore-not-found"]))
    try:
        document = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        raise KubectlError(f"kubectl get {step.obj} did not print JSON", transient=True) from None
    return [document] if isinstance(document, dict) else []


@task(cache_policy=NO_CACHE, task_run_name="verify {step.obj}")
def verify_rollout(namespace: str, kubectl: Kubectl, step: Step, timeout_s: float) -> StepResult:
    """`rollout status --timeout`: a timeout or a progress deadline is a failed step with kubectl's message."""
    started = time.perf_counter()
    try:
        result = run(kubectl, namespace, step.args, timeout_s=timeout_s + 15)
    except KubectlError as error:
        return StepResult(step, StepStatus.FAILED, attempts=1, duration_s=time.perf_counter() - started,
                          error=str(error))
    status = StepStatus.SUCCEEDED if result.ok else StepStatus.FAILED
    return StepResult(step, status, attempts=1, duration_s=result.duration_s,
                      error=None if result.ok else result.message)


@task(cache_policy=NO_CACHE)
def list_deployments(namespace: str, kubectl: Kubectl) -> list[dict[str, Any]]:
    """The namespace's deployments, or none when the listing fails (each then gets its `rollout status`)."""
    try:
        return get_items(kubectl, namespace, ["deployments"])
    except KubectlError:
        return []


def verify_all(namespace: str, kubectl: Kubectl, steps: Sequence[Step], timeout_s: float) -> list[StepResult]:
    """`rollout status a b c`, a call per batch, side by side. kubectl checks the objects in order and stops at
    the first that fails, so that one gets the call's message and those after it are checked one by one."""
    results: dict[int, StepResult] = {}
    planned = batches(steps)
    if len(planned) > 1:  # more than one call: one listing answers those already rolled out (core.rollout)
        results.update((step.number, StepResult(step, StepStatus.SUCCEEDED, attempts=1))
                       for step in confirmed_by_listing(steps, list_deployments(namespace, kubectl)))
        planned = batches([step for step in steps if step.number not in results])
    alone = [verify_rollout.submit(namespace, kubectl, batch.steps[0], timeout_s)
             for batch in planned if len(batch.steps) == 1]
    shared = [run_batch.submit(namespace, kubectl, as_is(batch), timeout_s * len(batch.steps) + 15)
              for batch in planned if len(batch.steps) > 1]
    for batch_future in as_completed(shared):
        ran = batch_future.result()
        results.update((result.step.number, result) for result in ran.results())
        left = ran.left
        if left and ran.error is not None and ran.stderr:  # kubectl answered: its error is the first one's
            results[left[0].number] = StepResult(left[0], StepStatus.FAILED, attempts=1, duration_s=ran.duration_s,
                                                 error=ran.error)
            left = left[1:]
        alone += [verify_rollout.submit(namespace, kubectl, step, timeout_s) for step in left]
    for future in alone:
        result = future.result()
        results[result.step.number] = result
    return [results[step.number] for step in steps]


def _outcome(future: PrefectFuture[StepResult], step: Step) -> StepResult:
    future.wait()  # sets the final state locally; reading `.state` alone may ask the API, which lags behind
    state = future.state
    if state.is_completed():
        return future.result()
    error = future.result(raise_on_failure=False)
    return StepResult(step, StepStatus.FAILED, attempts=getattr(error, "attempts", 1), error=str(error))


def run_steps(namespace: str, kubectl: Kubectl, steps: Sequence[Step], group_of: Callable[[Step], str],
              on_wave: Callable[[list[StepResult]], None], retries: int = RETRIES,
              retry_delays_s: Sequence[float] = RETRY_DELAYS_S) -> list[StepResult]:
    """Run the steps, those of one group (object) in order and groups side by side, wave by wave.

    In a wave, steps that differ only in their object share one kubectl call (core.batch); a step that call
    did not confirm, and a step that cannot share, runs as its own task, retried when transient. After a failed
    step, the rest of its group is skipped. `on_wave` sees each wave's results before the next wave starts, so
    the record is saved at every boundary a resume depends on.
    """
    single = execute_step.with_options(retries=retries, retry_delay_seconds=list(retry_delays_s))
    results: dict[int, StepResult] = {}
    stopped: set[str] = set()

    def settle(result: StepResult) -> None:
        results[result.step.number] = result
        if not result.ok:
            stopped.add(group_of(result.step))

    for wave in waves(steps, group_of):
        for step in wave:
            if group_of(step) in stopped:
                settle(StepResult(step, StepStatus.SKIPPED,
                                  error="not run: an earlier step on the same object failed"))
        ready = [step for step in wave if group_of(step) not in stopped]
        planned = batches(ready)
        alone: dict[PrefectFuture[StepResult], Step] = {
            single.submit(namespace, kubectl, batch.steps[0]): batch.steps[0]
            for batch in planned if len(batch.steps) == 1}
        # a second more per object: a call over 250 HPAs took over a minute on a loaded machine, and a batch
        # that times out runs every one of its steps again alone
        shared = [run_batch.submit(namespace, kubectl, as_is(batch), kubectl.timeout_s + len(batch.steps))
                  for batch in planned if len(batch.steps) > 1]
        for batch_future in as_completed(shared):
            ran = batch_future.result()
            for result in ran.results():
                settle(result)
            tried = ran.batch.tried(ran.left, ran.stderr)
            for step in ran.left:
                earlier = int(step.number in tried)
                alone[single.submit(namespace, kubectl, step, earlier_attempts=earlier)] = step
        for future in as_completed(list(alone)):
            settle(_outcome(future, alone[future]))
        on_wave([results[step.number] for step in wave])
    return [results[step.number] for step in steps]


@dataclass(frozen=True)
class TaskCluster:
    """The lifecycle's cluster, each call a Prefect task with kubectl's retry policy."""

    def capture(self, plan: Plan) -> list[dict[str, Any]]:
        return capture_objects(as_is(plan), kubectl_for(plan))

    def run_steps(self, plan: Plan, steps: Sequence[Step], group_of: Callable[[Step], str],
                  on_wave: Callable[[list[StepResult]], None]) -> list[StepResult]:
        return run_steps(plan.namespace, kubectl_for(plan), steps, group_of, on_wave)

    def verify(self, plan: Plan, steps: Sequence[Step], timeout_s: float) -> list[StepResult]:
        return verify_all(plan.namespace, kubectl_for(plan), steps, timeout_s)
