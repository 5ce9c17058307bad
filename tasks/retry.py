"""The retry policy shared by every kubectl task: transient failures only, with backoff."""

from typing import Any

from core.retry import KUBECTL_RETRY
from integrations import github
from integrations.kubectl import KubectlError

RETRIES = KUBECTL_RETRY.retries
RETRY_DELAYS_S = list(KUBECTL_RETRY.delays_s)


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry timeouts, refused connections, 429 and 5xx (from kubectl or GitHub); never
    NotFound, Forbidden or Invalid."""
    try:
        state.result()
    except KubectlError as error:
        return error.transient
    except github.GitHubError as error:
        return github.is_transient(error)
    except Exception:
        return False
    return False
