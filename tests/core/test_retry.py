"""The retry policies of core/retry.py: by type, on their schedule, and as long as the server asked."""

from types import SimpleNamespace

import pytest

import core.retry
from core.errors import PermanentError, TemporaryError
from core.retry import RetryPolicy, retry_until


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(core.retry, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    return fake


def failing(*errors: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"

    return calls, call


def test_a_temporary_error_is_retried_and_waited_for_as_long_as_it_asks(clock: Clock) -> None:
    calls, call = failing(TemporaryError("502"), TemporaryError("rate limited", delay_s=9.0))
    assert RetryPolicy((2.0, 5.0)).call(call) == "done"  # type: ignore[arg-type]
    assert len(calls) == 3 and clock.slept == [2.0, 9.0]


def test_a_permanent_error_is_raised_at_once(clock: Clock) -> None:
    calls, call = failing(PermanentError("422"))
    with pytest.raises(PermanentError):
        RetryPolicy((2.0, 5.0)).call(call)  # type: ignore[arg-type]
    until_calls, until_call = failing(PermanentError("404"))
    with pytest.raises(PermanentError):
        retry_until(until_call, 100.0, (0.2,))  # type: ignore[arg-type]
    assert len(calls) == len(until_calls) == 1 and clock.slept == []


def test_retry_until_stops_before_the_deadline_and_raises_the_last_error(clock: Clock) -> None:
    calls, call = failing(*(TemporaryError(f"try {n}") for n in range(10)))
    with pytest.raises(TemporaryError, match="try 4"):
        retry_until(call, 3.0, (0.2, 0.5, 1.0))  # type: ignore[arg-type]
    assert clock.slept == [0.2, 0.5, 1.0, 1.0], "the last pause repeats; a fifth would end past the deadline"
    assert len(calls) == 5


def test_retry_until_waits_as_long_as_the_error_asks(clock: Clock) -> None:
    calls, call = failing(TemporaryError("429", delay_s=2.5))
    assert retry_until(call, 10.0, (0.2,)) == "done"  # type: ignore[arg-type]
    assert clock.slept == [2.5] and len(calls) == 2
