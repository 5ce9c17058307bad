"""The retry policies, defined once: Prefect tasks take their retries and delays from here, and the CLI's
Prefect-free paths call `RetryPolicy.call` with the same schedule."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    delays_s: tuple[float, ...]
    """The wait before each retry; one retry per entry."""

    @property
    def retries(self) -> int:
        return len(self.delays_s)

    def call(self, attempt: Callable[[], T], transient: Callable[[Exception], bool]) -> T:
        """`attempt()`, retried after each delay while it raises a transient error; the last error is raised."""
        for delay in self.delays_s:
            try:
                return attempt()
            except Exception as error:
                if not transient(error):
                    raise
            time.sleep(delay)
        return attempt()


KUBECTL_RETRY = RetryPolicy((1.0, 2.0, 4.0))
"""Timeouts, refused connections, 429 and 5xx from kubectl (integrations.kubectl classifies them)."""
GITHUB_RETRY = RetryPolicy((2.0, 5.0))
"""Publishing a pull request: the integration is idempotent, so a retry never opens a second PR."""
