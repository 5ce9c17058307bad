"""The retry policy shared by every kubectl and GitHub task: transient failures only, with backoff."""

from typing import Any

from core.errors import TemporaryError
from core.retry import KUBECTL_RETRY

RETRIES = KUBECTL_RETRY.retries
RETRY_DELAYS_S = list(KUBECTL_RETRY.delays_s)


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry timeouts, refused connections, 429 and 5xx (from kubectl or GitHub); never
    NotFound, Forbidden or Invalid."""
    try:
        state.result()
    except TemporaryError:
        return True
    except Exception:
        return False
    return False
