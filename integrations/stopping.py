"""SIGTERM and SIGINT while a run holds its lock: the run is asked to stop, not killed.

A worker shutting down, a cancelled Prefect deployment run (its runner sends the flow-run process SIGTERM) and a
person's Ctrl-C all reach a run that may have kubectl writes in flight. Killed there (Prefect's own handler
raises in the main thread), it released its lock while those writes were still landing. While the lock is held,
these signals only tell the run to stop (`on_stop`): it takes no new step, lets its writes in flight land or be
confirmed, saves its record, releases the lock, and its process then exits with the signal's code (143, 130).
"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: list[signal.Signals] = []
"""The signals that asked this process's runs to stop, for its exit code."""


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

    previous = {sig: signal.signal(sig, asked) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_code(code: int) -> int:
    """The process's exit code: 128 + the first signal that stopped a run, else `code`. A run that finished
    anyway (the signal came after its last step) exits with its own code."""
    return 128 + int(_received[0]) if _received and code != 0 else code
