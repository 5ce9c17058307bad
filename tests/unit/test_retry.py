"""The one retry policy: transient errors are retried on its schedule, permanent ones at once."""

import pytest

from core.retry import RetryPolicy


class Flaky(Exception):
    pass


def test_transient_errors_are_retried_on_the_schedule_and_permanent_ones_are_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("core.retry.time.sleep", waits.append)
    policy = RetryPolicy((1.0, 2.0))
    calls: list[int] = []

    def twice_flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky()
        return "read"

    assert policy.call(twice_flaky, lambda error: isinstance(error, Flaky)) == "read"
    assert waits == [1.0, 2.0] and policy.retries == 2
    with pytest.raises(ValueError):
        policy.call(lambda: int("x"), lambda error: isinstance(error, Flaky))
    assert waits == [1.0, 2.0], "a permanent error is not waited for"
