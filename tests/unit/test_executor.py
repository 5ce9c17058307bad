"""The core step executor over scripted calls: shared calls and their step-by-step fallback, a failed group's
rest skipped, a stop between waves (core/executor.py)."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from core.batch import Batch, BatchRun
from core.errors import LeaseLost, Stopped
from core.executor import SKIPPED_AFTER_FAILURE, C, run_alone, run_steps
from core.report import StepResult
from core.steps import Step
from core.vocabulary import StepStatus, StepType


@dataclass(frozen=True)
class Done:
    value: object

    def result(self) -> object:
        return self.value


@dataclass
class Scripted:
    """Calls answered from a script: the steps whose call fails, and what a shared call confirms."""

    failing: set[int] = field(default_factory=set)
    shared_stderr: str = ""
    made: list[tuple[str, tuple[int, ...], int]] = field(default_factory=list)

    def alone(self, step: Step, fence: object, earlier_attempts: int) -> Done:
        self.made.append(("alone", (step.number,), earlier_attempts))
        failed = step.number in self.failing
        return Done(StepResult(step, StepStatus.FAILED if failed else StepStatus.SUCCEEDED, attempts=1,
                               error="forbidden" if failed else None))

    def shared(self, batch: Batch, timeout_s: float) -> Done:
        self.made.append(("shared", tuple(step.number for step in batch.steps), 0))
        done = tuple(step for step in batch.steps if step.number not in self.failing)
        error = "error: not found" if len(done) < len(batch.steps) else None
        return Done(BatchRun(batch, done, 0.1, error, self.shared_stderr))

    def rollout(self, step: Step, timeout_s: float) -> Done:
        raise AssertionError("no rollout checks here")

    def from_status(self, step: Step, timeout_s: float) -> Done:
        raise AssertionError("no rollout checks here")

    def completed(self, calls: Sequence[C]) -> Iterator[C]:
        return iter(calls)


def delete_hpa(number: int, name: str) -> Step:
    return Step(number, StepType.ACTION, "apply_hpa", f"hpa/{name}", ("delete", "hpa", name), f"delete hpa {name}")


def run(calls: Scripted, steps: list[Step], fence: object = lambda: None) -> list[StepResult]:
    return run_steps(calls, steps, lambda step: str(step.obj), lambda wave: None, fence,
                     call_timeout_s=60)


def test_what_a_shared_call_did_not_confirm_runs_alone_counting_the_try_it_saw_fail() -> None:
    calls = Scripted(failing={2}, shared_stderr='Error from server (NotFound): "b" not found')

    results = run(calls, [delete_hpa(1, "a"), delete_hpa(2, "b"), delete_hpa(3, "c")])

    assert calls.made == [("shared", (1, 2, 3), 0), ("alone", (2,), 1)]
    assert [(r.status, r.batch) for r in results] == [(StepStatus.SUCCEEDED, 3), (StepStatus.FAILED, 1),
                                                      (StepStatus.SUCCEEDED, 3)]


def test_after_a_failed_step_the_rest_of_its_group_is_skipped() -> None:
    calls = Scripted(failing={1})
    first = delete_hpa(1, "a")
    again = Step(2, StepType.ACTION, "apply_hpa", "hpa/a", ("apply", "-f", "-"), "apply hpa a", stdin="{}")

    results = run(calls, [first, again, delete_hpa(3, "b")])

    assert calls.made == [("shared", (1, 3), 0), ("alone", (1,), 0)], "the apply after it is never sent"
    assert [(r.status, r.error) for r in results] == [(StepStatus.FAILED, "forbidden"),
                                                      (StepStatus.SKIPPED, SKIPPED_AFTER_FAILURE),
                                                      (StepStatus.SUCCEEDED, None)]


def test_a_stop_between_waves_says_how_many_steps_had_run() -> None:
    fences: list[int] = []

    def fence() -> None:
        fences.append(1)
        if len(fences) == 2:
            raise Stopped("SIGTERM")

    second = Step(2, StepType.ACTION, "apply_hpa", "hpa/a", ("apply", "-f", "-"), "apply hpa a", stdin="{}")
    with pytest.raises(Stopped) as stopped:
        run(Scripted(), [delete_hpa(1, "a"), second], fence)

    assert (stopped.value.done, stopped.value.total) == (1, 2)


def test_every_attempt_of_a_step_proves_the_lock_before_its_call_the_first_one_too() -> None:
    """A step may start well after its wave's check (behind the steps before it in the task runner's threads, or
    in a process stopped meanwhile): its first attempt proves the lock too, and sends nothing once it is lost."""
    step = delete_hpa(1, "a")
    sent: list[int] = []

    def lost() -> None:
        raise LeaseLost("the lock is held by run other")

    with pytest.raises(LeaseLost):
        run_alone(step, 1, lost, list, lambda: float(sent.append(1) or 0.1))
    assert sent == [], "the first attempt sent its write without proving the lock"

    def stopping() -> None:
        raise Stopped("SIGTERM", 0, 1)

    result = run_alone(step, 1, stopping, list, lambda: float(sent.append(1) or 0.1))
    assert result.status == StepStatus.SUCCEEDED and sent == [1], "asked to stop, a started step still settles"
