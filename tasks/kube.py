"""kubectl as Prefect tasks: batched capture, one task per step (retried when transient), rollout checks."""

import time
from collections.abc import Callable, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import task_run

from core.plan import Plan
from core.report import StepResult
from core.steps import Step
from integrations.kubectl import Kubectl, KubectlError, checked, get_items, run
from tasks.retry import RETRIES, RETRY_DELAYS_S, is_transient

_KIND_RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def capture_objects(plan: Plan, kubectl: Kubectl) -> list[dict[str, Any]]:
    """Every workload and HPA the plan could touch, in one `kubectl get a,b -o json` for the namespace."""
    kinds = {action.workload.kind for action in plan.actions}
    resources = [_KIND_RESOURCES[kind] for kind in sorted(kinds)] + ["horizontalpodautoscalers"]
    return get_items(kubectl, plan.namespace, resources) if plan.actions else []


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient,
      task_run_name="step {step.number}: {step.summary}")
def execute_step(namespace: str, kubectl: Kubectl, step: Step) -> StepResult:
    """Run one step; a failure raises KubectlError so that Prefect retries it only when transient."""
    attempt = task_run.run_count or 1
    try:
        result = checked(run(kubectl, namespace, step.args, stdin=step.stdin))
    except KubectlError as error:
        error.attempts = attempt
        raise
    return StepResult(step, "succeeded", attempts=attempt, duration_s=result.duration_s)


@task(cache_policy=NO_CACHE, task_run_name="verify {step.obj}")
def verify_rollout(namespace: str, kubectl: Kubectl, step: Step, timeout_s: float) -> StepResult:
    """`rollout status --timeout`: a timeout or a progress deadline is a failed step with kubectl's message."""
    started = time.perf_counter()
    try:
        result = run(kubectl, namespace, step.args, timeout_s=timeout_s + 15)
    except KubectlError as error:
        return StepResult(step, "failed", attempts=1, duration_s=time.perf_counter() - started, error=str(error))
    status = "succeeded" if result.ok else "failed"
    return StepResult(step, status, attempts=1, duration_s=result.duration_s,
                      error=None if result.ok else result.message)


def rollout_steps(refs: Sequence[str], first_number: int, timeout_s: float) -> list[Step]:
    return [Step(first_number + offset, "verify", None, ref, ("rollout", "status", ref, f"--timeout={timeout_s:g}s"),
                 f"{ref} rolled out") for offset, ref in enumerate(refs)]


def _outcome(future: PrefectFuture[StepResult], step: Step) -> StepResult:
    future.wait()  # sets the final state locally; reading `.state` alone may ask the API, which lags behind
    state = future.state
    if state.is_completed():
        return future.result()
    if not state.is_failed():
        return StepResult(step, "skipped", error="not run: an earlier step on the same object failed")
    error = future.result(raise_on_failure=False)
    return StepResult(step, "failed", attempts=getattr(error, "attempts", 1), error=str(error))


def run_steps(namespace: str, kubectl: Kubectl, steps: Sequence[Step], group_of: Callable[[Step], str],
              on_result: Callable[[StepResult], None], retries: int = RETRIES,
              retry_delays_s: Sequence[float] = RETRY_DELAYS_S) -> list[StepResult]:
    """Submit every step as a task: steps of one group (object) in order, groups side by side.

    `on_result` sees each result as it arrives, so the record can be saved while later steps still run.
    """
    runner = execute_step.with_options(retries=retries, retry_delay_seconds=list(retry_delays_s))
    futures: dict[PrefectFuture[StepResult], Step] = {}
    last_in_group: dict[str, PrefectFuture[StepResult]] = {}
    for step in steps:
        group = group_of(step)
        previous = last_in_group.get(group)
        future = runner.submit(namespace, kubectl, step, return_state=False, wait_for=[previous] if previous else [])
        last_in_group[group] = future
        futures[future] = step
    results: dict[int, StepResult] = {}
    for future in as_completed(list(futures)):
        result = _outcome(future, futures[future])
        results[result.step.number] = result
        on_result(result)
    return [results[step.number] for step in steps]
