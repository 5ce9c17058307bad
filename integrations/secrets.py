"""Keep tokens out of every output: stdout, stderr, logs (Prefect's log table included), artifacts, records and
PR comments.

- ``register(secret)``: remember a secret (the GitHub token from env or a Prefect Secret block, a password in a
  URL) and install ``SecretFilter`` on the root and Prefect loggers and their handlers.
- ``mask(text)``: every registered secret, every GitHub-token-shaped string (ghp_, gho_, ghu_, ghs_, ghr_,
  github_pat_) and every password in a URL become ``***``. Call it on anything about to be printed or stored.
- ``mask_untrusted(text)``: ``mask`` plus classic 40-hex PATs, for text taken from GitHub (error bodies).
  Not applied to our own output, where 40-hex strings are commit SHAs.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit

from core.errors import PermanentError, TemporaryError

MASK = "***"
# Shorter values would mask ordinary words; no real token is this short.
MIN_SECRET_LENGTH = 8
# Written to start with a literal where they can: the regex engine then skips ahead to it instead of trying
# every position (a record or artifact of 3,000 steps is megabytes; these ran 1.5x and 6x faster so).
TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_])g(?:h[pousr]|ithub_pat)_[A-Za-z0-9_]{10,}")
CLASSIC_PAT = re.compile(r"\b[0-9a-fA-F]{40}\b")
URL_PASSWORD = re.compile(r"://([^/\s:@]*):[^/\s@]+@")
PREFECT_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs")

_lock = threading.Lock()
_secrets: set[str] = set()


def register(secret: str | None) -> None:
    """Mask `secret` from now on, in this process; installs the logging filter once."""
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.add(secret)
    install_log_filter()


def register_url(url: str | None) -> None:
    """Register the password (or token) a URL carries in its user-info part, if any."""
    if not url:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    register(parts.password)
    if parts.password is None:
        register(parts.username)


def mask(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: a secret containing another
    for secret in known:
        text = text.replace(secret, MASK)
    text = URL_PASSWORD.sub(rf"://\1:{MASK}@", text)
    return TOKEN_SHAPED.sub(MASK, text)


def mask_untrusted(text: str) -> str:
    return CLASSIC_PAT.sub(MASK, mask(text))


class SecretFilter(logging.Filter):
    """Masks the formatted message (and any traceback text) of every record it sees; never drops a record.

    A TemporaryError or PermanentError (kubectl's, GitHub's, the lock's) is an expected failure whose message
    says it all, and the run reports it as one line: Prefect's engine logs the exception a task raised after its
    last retry with its traceback, which is left out here, on the console and in the UI alike.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and isinstance(record.exc_info[1], TemporaryError | PermanentError):
            record.exc_info, record.exc_text = None, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


_filter = SecretFilter()


def install_log_filter() -> None:
    """On the loggers (records logged to them) and on their handlers (records propagated from child loggers,
    which skip the parents' logger filters): Prefect's API handler sits on prefect.flow_runs/task_runs."""
    for logger in (logging.getLogger(), *(logging.getLogger(name) for name in PREFECT_LOGGERS)):
        for target in (logger, *logger.handlers):
            if _filter not in target.filters:
                target.addFilter(_filter)
