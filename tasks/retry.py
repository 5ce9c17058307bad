"""The retry policy of every kubectl task: temporary failures only (by type), with backoff. GitHub tasks do not
retry: the GitHub client and its write layer do (integrations.github)."""

from typing import Any

from core.retry import KUBECTL_RETRY, temporary

RETRIES = KUBECTL_RETRY.retries
RETRY_DELAYS_S = list(KUBECTL_RETRY.delays_s)


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry a TemporaryError (timeouts, refused connections, 429 and 5xx); never
    NotFound, Forbidden or Invalid."""
    try:
        state.result()
    except Exception as error:
        return temporary(error)
    return False
