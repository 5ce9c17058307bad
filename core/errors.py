"""The project's error types: bad input, and failures that a retry may (temporary) or cannot (permanent) fix.

Modelled on kopf's TemporaryError/PermanentError: every failure of a call to the cluster is one or the other,
so that retry policies ask one question (`isinstance(error, TemporaryError)`) wherever the call was made.
"""


class InputError(Exception):
    """Bad input (plan, desired state, flag): exit code 2, nothing executed.

    `source` is the file (or `arguments` for flags), `field` the dotted path inside it.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(f"{source}: {field}: {message}")
        self.source = source
        self.field = field
        self.message = message


class TemporaryError(Exception):
    """A failure worth retrying with backoff (5xx, 429, timeouts, dropped connections).

    `delay_s` is how long the server asked us to wait (`Retry-After`), when it said.
    """

    transient = True

    def __init__(self, message: str, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PermanentError(Exception):
    """A failure that retrying cannot fix (NotFound, Forbidden, Invalid, a failed precondition, lost state)."""

    transient = False


class LeaseLost(PermanentError):
    """The target's lock is no longer ours (renewal failed past expiry, or another holder took it): stop before
    the next step."""


class Stopped(Exception):
    """The run was asked to stop (SIGTERM, SIGINT) while it held its lock: it takes no new step, and ends once its
    writes in flight are settled and its record saved. `done` of `total` steps had run. Not `locked`: asked before
    it took its lock, it stopped at once, having changed nothing."""

    def __init__(self, signal_name: str, done: int = 0, total: int = 0, locked: bool = True) -> None:
        super().__init__(f"stopped by {signal_name} after {done} of {total} steps" if locked
                         else f"stopped by {signal_name} before taking the lock: nothing was changed")
        self.signal_name, self.done, self.total, self.locked = signal_name, done, total, locked


class RecordUnreadable(PermanentError):
    """An apply record exists but cannot be read (a truncated mirror, a corrupt or partial ConfigMap).

    Unlike "no record anywhere", this must stop a rollback: guessing would undo the wrong things. `where` names
    the unreadable copy (a file path or `configmap/<name>`).
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: the apply record exists but cannot be read: {reason}")
        self.where = where
        self.reason = reason
