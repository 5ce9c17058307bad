"""The retry policies, defined once: Prefect tasks take their retries and delays from here, and the CLI's
Prefect-free paths and the GitHub writes call `RetryPolicy.call` with the same schedule.

Errors are classified by type (core.errors): a `TemporaryError` is retried, anything else is raised at once. A
`TemporaryError` that carries `delay_s` (the server said how long to wait: Retry-After, a rate limit's reset) is
waited for that long when it is longer than the schedule's pause."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from core.errors import TemporaryError

T = TypeVar("T")


def temporary(error: Exception) -> bool:
    """The one classification: a retry may fix a TemporaryError and nothing else."""
    return isinstance(error, TemporaryError)


def pause_s(scheduled: float, error: Exception) -> float:
    """The wait before the next attempt: the schedule's, or longer when the server asked for longer."""
    asked = error.delay_s if isinstance(error, TemporaryError) else None
    return max(scheduled, asked) if asked is not None else scheduled


@dataclass(frozen=True)
class RetryPolicy:
    delays_s: tuple[float, ...]
    """The wait before each retry; one retry per entry."""

    @property
    def retries(self) -> int:
        return len(self.delays_s)

    @property
    def attempts(self) -> int:
        return len(self.delays_s) + 1

    def call(self, attempt: Callable[[], T], transient: Callable[[Exception], bool] = temporary) -> T:
        """`attempt()`, retried after each delay while it raises a transient error; the last error is raised."""
        for delay in self.delays_s:
            try:
                return attempt()
            except Exception as error:
                if not transient(error):
                    raise
                wait = pause_s(delay, error)
            time.sleep(wait)
        return attempt()


def retry_until(call: Callable[[], T], deadline: float, pauses_s: tuple[float, ...],
                transient: Callable[[Exception], bool] = temporary) -> T:
    """`call()`, retried while it raises a transient error, after each pause (the last one repeats; longer when
    the error asks for longer), until the next pause would end past `deadline` (time.monotonic); then the last
    error is raised. Only for calls that are safe to repeat, or that check before they write."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if not transient(error):
                raise
            pause = pause_s(pauses_s[min(attempt, len(pauses_s) - 1)], error)
            if time.monotonic() + pause >= deadline:
                raise
        time.sleep(pause)
        attempt += 1


KUBECTL_RETRY = RetryPolicy((1.0, 2.0, 4.0))
"""Timeouts, refused connections, 429 and 5xx from kubectl (integrations.kubectl classifies them), for a step."""
KUBECTL_PAUSES_S = (0.2, 0.5, 1.0, 2.0)
"""The pauses of a kubectl call bounded by a deadline instead (the lock's lease, the records, the review's
reads: integrations.kubectl.retry_transient)."""
GITHUB_RETRY = RetryPolicy((2.0, 5.0))
"""A GitHub write (POST, PUT): each is idempotent or checks first whether an earlier attempt landed, so a retry
never posts a comment or opens a pull request twice. GitHub's idempotent requests (GET, PATCH, DELETE) are
retried by PyGithub's client instead, on GITHUB_RETRIES (integrations.github), so that no request is retried by
two layers."""
