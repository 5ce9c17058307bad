"""How a process that runs a flow starts and ends.

It imports Prefect with the cyclic garbage collector off and then freezes what the imports made
(`long_lived_imports`): those ~240,000 objects live as long as the process, and the collector walked them in three
full collections during every 10-deployment run (0.2-0.3 s with the GIL held, before and between its kubectl
calls). The CLI does so, and so does the flow-run process a worker starts (`deployments/engine.py`).

A console script ends with its command's exit code, once every exit hook has run, without the interpreter's
teardown (`run_and_exit`).

An executed run has loaded Prefect's ~2,000 modules; tearing them down took 0.15-0.3 s after every apply and
rollback had printed its outcome (measured from the command's return to the process's end: 0.32 s, 0.03 s
without). The hook that leaves is registered before the command runs, and exit hooks run last registered first,
so Prefect's own (its event and log services' drains, its event loop threads, a temporary server's stop) have
all run when it does. It flushes the log handlers and stdout and stderr, as the teardown would have; a command
that raised gets the normal exit, traceback included.
"""

import atexit
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from integrations import stopping

BLANK_MEANS_UNSET = ("PREFECT_API_URL", "PREFECT_UI_URL", "PREFECT_API_KEY")
"""Prefect settings that a shell or a CI file may leave set but empty (`PREFECT_API_URL=`): that means no server,
as unset does. Prefect would otherwise take the empty string as the server's address, and its events client
fails on it with a traceback per event."""


def run_and_exit(command: Callable[[], int]) -> NoReturn:
    for name in BLANK_MEANS_UNSET:
        if os.environ.get(name) == "":
            del os.environ[name]
    exit_code: list[int] = []
    atexit.register(_leave, exit_code)
    code = stopping.exit_code(command())
    exit_code.append(code)
    if _Leaving.at_once:
        _leave(exit_code)
    sys.exit(code)


class _Leaving:
    at_once = False


def leave_at_once() -> None:
    """The command's outcome is complete and printed once it returns, and nothing the exit hooks would still do can
    succeed (Prefect's event and log services drain, without a bound, to a server that is gone): `run_and_exit`
    then ends the process as soon as the command returns, without running them. Only `os._exit` skips them: they
    are threading's exit hooks, which run before any `atexit` handler."""
    _Leaving.at_once = True


def _leave(exit_code: list[int]) -> None:
    if exit_code:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code[0])


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Imports whose objects last as long as the process (Prefect's and ours): the cyclic garbage collector does
    not run while they are made, and leaves them alone afterwards (`gc.freeze`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
