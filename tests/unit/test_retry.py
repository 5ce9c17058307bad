"""The one retry policy: transient errors are retried on its schedule, permanent ones at once."""

import pickle

import pytest

from core.errors import PermanentError, TemporaryError
from core.retry import RetryPolicy
from integrations.github import GitHubError
from integrations.kubectl import KubectlError
from tasks.retry import is_transient


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


class FailedState:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def result(self) -> None:
        raise self.error


@pytest.mark.parametrize(("error", "retried"), [
    (KubectlError("the server is currently unable to handle the request", transient=True), True),
    (KubectlError('deployments.apps "web" not found', transient=False), False),
    (GitHubError("GitHub answered 502 Bad Gateway", transient=True), True),
    (GitHubError("GitHub answered 404 Not Found"), False),
    (ValueError("a bug"), False),
])
def test_one_retry_condition_for_kubectl_and_github_by_error_type(error: Exception, retried: bool) -> None:
    assert isinstance(error, TemporaryError) is retried
    assert isinstance(error, PermanentError) is (not retried and not isinstance(error, ValueError))
    assert is_transient(None, None, FailedState(error)) is retried
    assert pickle.loads(pickle.dumps(error)).__class__ is error.__class__, "Prefect may persist it"
