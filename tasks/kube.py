"""kubectl as Prefect tasks: batched capture, steps in shared calls or alone (retried when transient), rollout
checks."""

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import task_run

from core.batch import Batch, BatchRun, batches, stdin_chunks, waves
from core.errors import Stopped
from core.landed import landed
from core.plan import Plan
from core.record import RECORD_ANNOTATION, STAMP_FIELD_MANAGER
from core.report import StepResult
from core.rollout import confirmed_by_listing
from core.steps import Step
from core.vocabulary import StepStatus
from integrations.kubectl import Kubectl, KubectlError, checked, get_items, let_land, run
from integrations.policy_read import get_with_policy
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
    """Every workload and HPA the plan could touch, and the namespace's policy objects (core.policy), in one
    `kubectl get a,b,... -o json` for the namespace."""
    kinds = {action.workload.kind for action in plan.actions}
    resources = [_KIND_RESOURCES[kind] for kind in sorted(kinds)] + ["horizontalpodautoscalers"]
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
    """Run one step; a failure raises KubectlError so that Prefect retries it only when transient.

    `earlier_attempts` counts a shared call (core.batch) that already tried this step and failed. Every attempt
    first proves the lock is still the run's (`fence`, raising LeaseLost: after a takeover, the object is the new
    holder's to change): a step may start well after its wave's check, once the steps before it in the task
    runner's threads ended, and its process may have been stopped meanwhile. A step tried before (a retry, or
    after that shared call) then reads its object: a write whose answer was lost may have landed, and is then
    confirmed rather than sent twice."""
    attempt = earlier_attempts + (task_run.run_count or 1)
    started = time.perf_counter()
    with suppress(Stopped):  # asked to stop, the run still confirms this write rather than leave it unknown
        fence()
    if attempt > 1 and step.landing is not None and landed(step.landing, live_object(namespace, kubectl, step)):
        return StepResult(step, StepStatus.SUCCEEDED, attempts=attempt, duration_s=time.perf_counter() - started)
    try:
        result = checked(run(kubectl, namespace, step.args, stdin=step.stdin))
    except KubectlError as error:
        error.attempts = attempt
        let_land(error.maybe_landed and step.landing is not None)  # the retry reads the object first
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


def stamp_calls(refs: Sequence[str], record: str) -> list[tuple[tuple[str, ...], str]]:
    """The stamp's `kubectl patch -f - --type=merge` calls setting infra-orchestrator.io/record=<record>, and
    their stdin. A merge patch is one request per object; `kubectl annotate` reads each object first, a second
    round trip. Objects read from stdin get a client each, so kubectl's rate limiter never holds them back, and a
    large plan's stamp is spread over a few calls side by side (core.batch)."""
    patch = json.dumps({"metadata": {"annotations": {RECORD_ANNOTATION: record}}}, separators=(",", ":"))
    args = ("patch", "-f", "-", "--type=merge", f"-p={patch}", f"--field-manager={STAMP_FIELD_MANAGER}",
            "-o", "name")
    return [(args, chunk) for chunk in stdin_chunks(refs)]


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


def stamp_all(namespace: str, kubectl: Kubectl, refs: Sequence[str], record: str) -> None:
    """The stamp's calls side by side; once every one has ended, the first failure is raised."""
    futures = [stamp_objects.submit(namespace, kubectl, args, stdin, stdin.count("\n"))
               for args, stdin in stamp_calls(refs, record)]
    for future in futures:
        future.wait()
    for future in futures:
        future.result()


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


ON_DELETE_POLL_S = 1.0


def on_delete_unready(statefulset: Mapping[str, Any]) -> str | None:
    """Why an `updateStrategy: OnDelete` StatefulSet is not verified yet, None when it is.

    Its pods are replaced only when deleted, so updateRevision stays ahead of currentRevision (on clusters before
    kubernetes/kubernetes#136833 it stays so even after every pod was replaced) and kubectl refuses `rollout
    status`: the controller must have seen the latest spec, and run exactly the wanted replicas, all ready."""
    generation = int(statefulset.get("metadata", {}).get("generation", 1))
    status = statefulset.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return f"observedGeneration {observed} is behind generation {generation}"
    wanted = int(statefulset.get("spec", {}).get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    pods = int(status.get("replicas") or 0)
    if pods > wanted:
        return f"{pods} pods for {wanted} replicas"
    return None if ready == wanted else f"{ready} of {wanted} replicas ready"


def _ready_summary(ref: str, statefulset: Mapping[str, Any]) -> str:
    """What a verified OnDelete StatefulSet's status says, pods still at the old template included."""
    wanted = int(statefulset.get("spec", {}).get("replicas", 1))
    waiting = wanted - int((statefulset.get("status") or {}).get("updatedReplicas") or 0)
    kept = f"; pods on the previous template until deleted: {waiting}" if waiting > 0 else ""
    return f"{ref} verified from status (updateStrategy OnDelete): {wanted} of {wanted} replicas ready{kept}"


def _is_on_delete(item: Mapping[str, Any]) -> bool:
    return bool(item.get("kind") == "StatefulSet"
                and (item.get("spec", {}).get("updateStrategy") or {}).get("type") == "OnDelete")


def on_delete_steps(namespace: str, kubectl: Kubectl, steps: Sequence[Step],
                    listing: Sequence[dict[str, Any]] | None = None) -> set[int]:
    """The verify steps whose object is an OnDelete StatefulSet, as `listing` shows them, else as read in one
    `kubectl get`. When the read fails, none: `rollout status` then reports the cluster's error for each."""
    refs = [str(step.obj) for step in steps if str(step.obj).startswith("statefulset/")]
    if not refs:
        return set()
    if listing is not None:
        items: Sequence[Any] = [item for item in listing if item.get("kind") == "StatefulSet"]
    else:
        try:
            document = json.loads(checked(run(kubectl, namespace, ["get", *refs, "-o", "json"])).stdout)
        except (KubectlError, json.JSONDecodeError):
            return set()
        items = document.get("items", [document]) if isinstance(document, dict) else []
    names = {f"statefulset/{item['metadata']['name']}" for item in items if _is_on_delete(item)}
    return {step.number for step in steps if step.obj in names}


@task(cache_policy=NO_CACHE, task_run_name="verify {step.obj} from status")
def verify_from_status(namespace: str, kubectl: Kubectl, step: Step, timeout_s: float) -> StepResult:
    """Poll an OnDelete StatefulSet's status until it is ready (on_delete_unready), for at most `timeout_s`:
    a timeout is a failed step saying what was still missing."""
    started = time.perf_counter()
    ran = replace(step, args=("get", str(step.obj), "-o", "json"))  # reported as run: a read, not rollout status
    while True:
        try:
            found = live_object(namespace, kubectl, step)
            reason = on_delete_unready(found[0]) if found else f"{step.obj} not found"
        except KubectlError as error:
            reason = str(error)
        elapsed = time.perf_counter() - started
        if reason is None:
            return StepResult(replace(ran, summary=_ready_summary(str(step.obj), found[0])), StepStatus.SUCCEEDED,
                              attempts=1, duration_s=elapsed)
        if elapsed >= timeout_s:
            return StepResult(ran, StepStatus.FAILED, attempts=1, duration_s=elapsed,
                              error=f"{step.obj} (updateStrategy OnDelete) not ready after {timeout_s:g}s: {reason}")
        time.sleep(min(ON_DELETE_POLL_S, max(timeout_s - elapsed, 0.0)))


@task(cache_policy=NO_CACHE)
def list_deployments(namespace: str, kubectl: Kubectl) -> list[dict[str, Any]]:
    """The namespace's deployments, or none when the listing fails (each then gets its `rollout status`)."""
    try:
        return get_items(kubectl, namespace, ["deployments"])
    except KubectlError:
        return []


def verify_all(namespace: str, kubectl: Kubectl, steps: Sequence[Step], timeout_s: float,
               listing: Sequence[dict[str, Any]] | None = None) -> list[StepResult]:
    """`rollout status a b c`, a call per batch, side by side. kubectl checks the objects in order and stops at
    the first that fails, so that one gets the call's message and those after it are checked one by one.
    OnDelete StatefulSets, which kubectl refuses, are verified from their status instead. The Deployments that
    `listing` (the objects as read after the changes) shows rolled out need no call (core.rollout); without it,
    one listing is read when there would be more than one call."""
    results: dict[int, StepResult] = {}
    from_status = on_delete_steps(namespace, kubectl, steps, listing)
    rest = [step for step in steps if step.number not in from_status]
    if listing is None and len(batches(rest)) > 1:
        listing = list_deployments(namespace, kubectl)
    if listing is not None:
        results.update((step.number, StepResult(step, StepStatus.SUCCEEDED, attempts=1))
                       for step in confirmed_by_listing(rest, listing))
    planned = batches([step for step in rest if step.number not in results])
    alone = [verify_from_status.submit(namespace, kubectl, step, timeout_s)
             for step in steps if step.number in from_status]
    alone += [verify_rollout.submit(namespace, kubectl, batch.steps[0], timeout_s)
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
              on_wave: Callable[[list[StepResult]], None], fence: Callable[[], None], retries: int = RETRIES,
              retry_delays_s: Sequence[float] = RETRY_DELAYS_S) -> list[StepResult]:
    """Run the steps, those of one group (object) in order and groups side by side, wave by wave.

    In a wave, steps that differ only in their object share one kubectl call (core.batch); a step that call
    did not confirm, and a step that cannot share, runs as its own task, retried when transient. After a failed
    step, the rest of its group is skipped. `on_wave` sees each wave's results before the next wave starts, so
    the record is saved at every boundary a resume depends on. `fence` (raising LeaseLost once the lock is no
    longer the run's) is called before each wave and before each retry of a step.
    """
    single = execute_step.with_options(retries=retries, retry_delay_seconds=list(retry_delays_s))
    results: dict[int, StepResult] = {}
    stopped: set[str] = set()

    def settle(result: StepResult) -> None:
        results[result.step.number] = result
        if not result.ok:
            stopped.add(group_of(result.step))

    for wave in waves(steps, group_of):
        try:
            fence()
        except Stopped as asked:
            raise Stopped(asked.signal_name, len(results), len(steps)) from None
        for step in wave:
            if group_of(step) in stopped:
                settle(StepResult(step, StepStatus.SKIPPED,
                                  error="not run: an earlier step on the same object failed"))
        ready = [step for step in wave if group_of(step) not in stopped]
        planned = batches(ready)
        alone: dict[PrefectFuture[StepResult], Step] = {
            single.submit(namespace, kubectl, batch.steps[0], fence): batch.steps[0]
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
                alone[single.submit(namespace, kubectl, step, fence, earlier_attempts=earlier)] = step
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
                  on_wave: Callable[[list[StepResult]], None], fence: Callable[[], None]) -> list[StepResult]:
        return run_steps(plan.namespace, kubectl_for(plan), steps, group_of, on_wave, fence)

    def verify(self, plan: Plan, steps: Sequence[Step], timeout_s: float,
               listing: list[dict[str, Any]] | None = None) -> list[StepResult]:
        return verify_all(plan.namespace, kubectl_for(plan), steps, timeout_s, listing)

    def stamp(self, plan: Plan, refs: Sequence[str], record: str) -> None:
        stamp_all(plan.namespace, kubectl_for(plan), refs, record)
