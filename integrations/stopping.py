"""SIGTERM and SIGINT while a run holds its lock: the run is asked to stop, not killed.

A worker shutting down, a cancelled Prefect deployment run (its runner sends the flow-run process SIGTERM) and a
person's Ctrl-C all reach a run that may have kubectl writes in flight. Killed there (Prefect's own handler
raises in the main thread), it released its lock while those writes were still landing. While the lock is held,
these signals only tell the run to stop (`on_stop`): it takes no new step, lets its writes in flight land or be
confirmed, saves its record, releases the lock, and its process then exits with the signal's code (143, 130).

Before the lock is taken nothing has been changed, so a run asked to stop then ends at once (`stop_before_lock`):
the signal raises Stopped where the run is (the gate, the wait for the lock), which the run reports in one line,
instead of Prefect's SIGTERM handler reporting a crash.
"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from core.errors import Stopped

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: list[signal.Signals] = []
"""The signals that asked this process's runs to stop, for its exit code."""
_locking: list[bool] = []
"""Set once a run of this process starts taking its lock: from then on a signal asks it to stop, no longer
raising where it lands (`taking_lock`)."""


@contextmanager
def stop_on_signals(on_stop: Callable[[str], None]) -> Iterator[None]:
    """For the block, SIGTERM and SIGINT call `on_stop(<signal name>)` instead of ending the process; the handlers
    before are put back after it. Signal handlers belong to the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def asked(signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        _received.append(received)
        on_stop(received.name)

    if _received:  # asked while the lock was being taken, after its last look (`asked_before_lock`)
        on_stop(_received[0].name)
    with _handling(asked):
        yield


def taking_lock() -> None:
    """The run starts taking its lock: a signal no longer raises where it lands (the lock could be left taken
    and not released); the lock's wait asks `asked_before_lock()` at points where nothing is half-done, and once
    the lock is held the run is asked to stop (`stop_on_signals`)."""
    _locking.append(True)


def asked_before_lock() -> None:
    """Raise Stopped (nothing was changed) when a signal asked this process's run to stop."""
    if _received:
        raise Stopped(_received[0].name, locked=False)


@contextmanager
def stop_before_lock() -> Iterator[None]:
    """For the block (a flow run), SIGTERM and SIGINT before the run starts taking its lock raise Stopped (nothing
    was changed), where Prefect's handler would report a crash; from then on they are only noted (and asked for
    by the lock's wait, then by the run that holds it, `stop_on_signals`): after the lock, for the exit code, as
    the run publishes its outcome. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def asked(signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        _received.append(received)
        if not _locking:
            raise Stopped(received.name, locked=False)

    with _handling(asked):
        yield


@contextmanager
def _handling(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def exit_code(code: int) -> int:
    """The process's exit code: 128 + the first signal that stopped a run, else `code`. A run that finished
    anyway (the signal came after its last step) exits with its own code."""
    return 128 + int(_received[0]) if _received and code != 0 else code
