"""The step executor: waves, shared calls with their step-by-step fallback, skipping the rest of a failed group,
rollout checks (OnDelete StatefulSets from their status), and the stamp's calls side by side.

It decides which calls to make and in what order; the calls themselves are made through `Calls`: in a flow,
each is a Prefect task running kubectl (tasks/kube.py); in the unit tests, an in-memory cluster answering at once.
"""

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from core.batch import Batch, BatchRun, batches, stdin_chunks, waves
from core.errors import Stopped
from core.k8s import Kind
from core.landed import landed
from core.record import RECORD_ANNOTATION, STAMP_FIELD_MANAGER
from core.report import StepResult
from core.rollout import confirmed_by_listing
from core.steps import Step
from core.vocabulary import StepStatus

T = TypeVar("T", covariant=True)
C = TypeVar("C", bound="Call[Any]")

Fence = Callable[[], None]
"""The lock's `proceed`: raises LeaseLost once the lock is no longer the run's, Stopped when asked to stop."""
Listing = Sequence[Mapping[str, Any]]

SKIPPED_AFTER_FAILURE = "not run: an earlier step on the same object failed"
ON_DELETE_POLL_S = 1.0
VERIFY_GRACE_S = 15.0
"""What a `rollout status` call may take beyond its own `--timeout`: kubectl's start and its last read."""


class Call(Protocol[T]):
    """A call under way."""

    def result(self) -> T:
        """Wait for the call; its result (a step's failure is a failed StepResult, never raised)."""
        ...


class Calls(Protocol):
    """How the executor's calls are made, each started at once and running beside the others."""

    def alone(self, step: Step, fence: Fence, earlier_attempts: int) -> Call[StepResult]:
        """One step in its own call, retried when transient (calling `fence` before each retry). A step that a
        shared call already tried and saw fail counts that try in `earlier_attempts`."""
        ...

    def shared(self, batch: Batch, timeout_s: float) -> Call[BatchRun]:
        """One call for the batch's steps (never retried as a whole), at most `timeout_s` long."""
        ...

    def rollout(self, step: Step, timeout_s: float) -> Call[StepResult]:
        """`rollout status` of one object: a timeout or a progress deadline is a failed step."""
        ...

    def from_status(self, step: Step, timeout_s: float) -> Call[StepResult]:
        """An OnDelete StatefulSet's readiness read from its status (`verify_from_status`)."""
        ...

    def completed(self, calls: Sequence[C]) -> Iterator[C]:
        """The calls, each as soon as it has ended."""
        ...


class VerifyReads(Protocol):
    def statefulsets(self, refs: Sequence[str]) -> list[dict[str, Any]]:
        """The StatefulSets named (`statefulset/db`) as they are now; none when they cannot be read."""
        ...

    def deployments(self) -> list[dict[str, Any]]:
        """The namespace's Deployments; none when the listing fails."""
        ...


def run_steps(calls: Calls, steps: Sequence[Step], group_of: Callable[[Step], str],
              on_wave: Callable[[list[StepResult]], None], fence: Fence, call_timeout_s: float) -> list[StepResult]:
    """Run the steps, those of one group (object) in order and groups side by side, wave by wave.

    In a wave, steps that differ only in their object share one call (core.batch); a step that call did not
    confirm, and a step that cannot share, runs in its own call, retried when transient. After a failed step,
    the rest of its group is skipped. `on_wave` sees each wave's results before the next wave starts, so the
    record is saved at every boundary a resume depends on. `fence` is called before each wave (and by `calls`
    before each retry of a step); asked to stop, the run starts no new wave and says how many steps had run.
    """
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
                settle(StepResult(step, StepStatus.SKIPPED, error=SKIPPED_AFTER_FAILURE))
        for result in _run_wave(calls, [step for step in wave if group_of(step) not in stopped], fence,
                                call_timeout_s):
            settle(result)
        on_wave([results[step.number] for step in wave])
    return [results[step.number] for step in steps]


def _run_wave(calls: Calls, ready: Sequence[Step], fence: Fence, call_timeout_s: float) -> Iterator[StepResult]:
    """One wave's steps: the shared calls and the steps alone side by side; what a shared call did not confirm
    then runs alone."""
    planned = batches(ready)
    alone = [calls.alone(batch.steps[0], fence, 0) for batch in planned if len(batch.steps) == 1]
    # a second more per object: a call over 250 HPAs took over a minute on a loaded machine, and a batch that
    # times out runs every one of its steps again alone
    shared = [calls.shared(batch, call_timeout_s + len(batch.steps)) for batch in planned if len(batch.steps) > 1]
    for call in calls.completed(shared):
        ran = call.result()
        yield from ran.results()
        tried = ran.batch.tried(ran.left, ran.stderr)
        alone += [calls.alone(step, fence, int(step.number in tried)) for step in ran.left]
    for single in calls.completed(alone):
        yield single.result()


def run_alone(step: Step, attempt: int, fence: Fence, read: Callable[[], list[dict[str, Any]]],
              send: Callable[[], float], clock: Callable[[], float] = time.perf_counter) -> StepResult:
    """One step in its own call, its `attempt`-th try: `send` makes the call (returning its duration, raising its
    failure). Every attempt first proves the lock is still the run's (`fence`, raising LeaseLost: after a
    takeover, the object is the new holder's to change): a step may start well after its wave's check, once the
    steps before it in the task runner's threads ended, and its process may have been stopped meanwhile. A step
    tried before (a retry, or after a shared call that tried it) then reads its object (`read`): a write whose
    answer was lost may have landed, and is then confirmed rather than sent twice."""
    started = clock()
    with suppress(Stopped):  # asked to stop, the run still confirms this write rather than leave it unknown
        fence()
    if attempt > 1 and step.landing is not None and landed(step.landing, read()):
        return StepResult(step, StepStatus.SUCCEEDED, attempts=attempt, duration_s=clock() - started)
    return StepResult(step, StepStatus.SUCCEEDED, attempts=attempt, duration_s=send())


def verify_all(calls: Calls, reads: VerifyReads, steps: Sequence[Step], timeout_s: float,
               listing: Listing | None = None) -> list[StepResult]:
    """`rollout status a b c`, a call per batch, side by side. kubectl checks the objects in order and stops at
    the first that fails, so that one gets the call's message and those after it are checked one by one.
    OnDelete StatefulSets, which kubectl refuses, are verified from their status instead. The Deployments that
    `listing` (the objects as read after the changes) shows rolled out need no call (core.rollout); without it,
    one listing is read when there would be more than one call."""
    from_status = on_delete_steps(steps, listing, reads)
    rest = [step for step in steps if step.number not in from_status]
    if listing is None and len(batches(rest)) > 1:
        listing = reads.deployments()
    results = {step.number: StepResult(step, StepStatus.SUCCEEDED, attempts=1)
               for step in confirmed_by_listing(rest, listing or [])}
    alone = [calls.from_status(step, timeout_s) for step in steps if step.number in from_status]
    alone += _rollout_calls(calls, [step for step in rest if step.number not in results], timeout_s, results)
    for single in alone:
        result = single.result()
        results[result.step.number] = result
    return [results[step.number] for step in steps]


def _rollout_calls(calls: Calls, steps: Sequence[Step], timeout_s: float,
                   results: dict[int, StepResult]) -> list[Call[StepResult]]:
    """`rollout status` of the steps, a call per batch; the shared calls' results go into `results`, and the
    calls checking one object each (those that never shared, and those a shared call left) are returned."""
    planned = batches(steps)
    alone = [calls.rollout(batch.steps[0], timeout_s) for batch in planned if len(batch.steps) == 1]
    shared = [calls.shared(batch, timeout_s * len(batch.steps) + VERIFY_GRACE_S)
              for batch in planned if len(batch.steps) > 1]
    for call in calls.completed(shared):
        checked, left = verified_by_batch(call.result())
        results.update((result.step.number, result) for result in checked)
        alone += [calls.rollout(step, timeout_s) for step in left]
    return alone


def verified_by_batch(ran: BatchRun) -> tuple[list[StepResult], list[Step]]:
    """A shared `rollout status` call's results, and the steps left to check one by one: when kubectl answered
    (a message on stderr), the first step it did not confirm is the one that failed, with the call's message."""
    checked, left = ran.results(), ran.left
    if left and ran.error is not None and ran.stderr:
        checked.append(StepResult(left[0], StepStatus.FAILED, attempts=1, duration_s=ran.duration_s,
                                  error=ran.error))
        left = left[1:]
    return checked, left


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
    return bool(item.get("kind") == Kind.STATEFULSET
                and (item.get("spec", {}).get("updateStrategy") or {}).get("type") == "OnDelete")


def on_delete_steps(steps: Sequence[Step], listing: Listing | None, reads: VerifyReads) -> set[int]:
    """The verify steps whose object is an OnDelete StatefulSet, as `listing` shows them, else as read at once.
    When the read fails, none: `rollout status` then reports the cluster's error for each."""
    refs = [str(step.obj) for step in steps if str(step.obj).startswith("statefulset/")]
    if not refs:
        return set()
    items = reads.statefulsets(refs) if listing is None else [i for i in listing if i.get("kind") == Kind.STATEFULSET]
    names = {f"statefulset/{item['metadata']['name']}" for item in items if _is_on_delete(item)}
    return {step.number for step in steps if step.obj in names}


@dataclass(frozen=True)
class Clock:
    """Time for the status polling; a test's clock need not wait."""

    now: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep


class ReadFailed(Exception):
    """The object could not be read: the poll goes on, and a timeout reports this as what was missing."""


def verify_from_status(step: Step, read: Callable[[], list[dict[str, Any]]], timeout_s: float,
                       clock: Clock = Clock()) -> StepResult:
    """Poll an OnDelete StatefulSet (`read` returns it, or none when it does not exist, and raises ReadFailed)
    until it is ready (on_delete_unready), for at most `timeout_s`: a timeout is a failed step saying what was
    still missing."""
    started = clock.now()
    ran = replace(step, args=("get", str(step.obj), "-o", "json"))  # reported as run: a read, not rollout status
    while True:
        try:
            found = read()
            reason = on_delete_unready(found[0]) if found else f"{step.obj} not found"
        except ReadFailed as error:
            reason = str(error)
        elapsed = clock.now() - started
        if reason is None:
            return StepResult(replace(ran, summary=_ready_summary(str(step.obj), found[0])), StepStatus.SUCCEEDED,
                              attempts=1, duration_s=elapsed)
        if elapsed >= timeout_s:
            return StepResult(ran, StepStatus.FAILED, attempts=1, duration_s=elapsed,
                              error=f"{step.obj} (updateStrategy OnDelete) not ready after {timeout_s:g}s: {reason}")
        clock.sleep(min(ON_DELETE_POLL_S, max(timeout_s - elapsed, 0.0)))


def stamp_calls(refs: Sequence[str], record: str) -> list[tuple[tuple[str, ...], str]]:
    """The stamp's `kubectl patch -f - --type=merge` calls setting infra-orchestrator.io/record=<record>, and
    their stdin. A merge patch is one request per object; `kubectl annotate` reads each object first, a second
    round trip. Objects read from stdin get a client each, so kubectl's rate limiter never holds them back, and a
    large plan's stamp is spread over a few calls side by side (core.batch)."""
    patch = json.dumps({"metadata": {"annotations": {RECORD_ANNOTATION: record}}}, separators=(",", ":"))
    args = ("patch", "-f", "-", "--type=merge", f"-p={patch}", f"--field-manager={STAMP_FIELD_MANAGER}",
            "-o", "name")
    return [(args, chunk) for chunk in stdin_chunks(refs)]


def stamp_all(start: Callable[[tuple[str, ...], str], Call[None]], refs: Sequence[str], record: str) -> None:
    """The stamp's calls (`start` begins one: its arguments and stdin) side by side; once every one has ended,
    the first failure is raised."""
    started = [start(args, stdin) for args, stdin in stamp_calls(refs, record)]
    failures: list[BaseException] = []
    for call in started:
        try:
            call.result()
        except Exception as error:  # raised once every call has ended
            failures.append(error)
    if failures:
        raise failures[0]
