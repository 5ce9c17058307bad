"""What one flow run keeps in its process, outside Prefect, for whoever started it.

When the Prefect server goes away after the work, Prefect's engine cannot record the run's final state and
raises: the CLI still prints the run's report, kept here. Once one artifact call failed, no further one is tried
in that run (each would wait out the client's retries against a server that is gone).

A run's `Kept` is made by whoever waits for the run (the CLI's `run_flow`, before the flow starts) or, for a
run nobody waits on in the process, by the flow itself (flows/decorator.py); the run's tasks see it through the
context Prefect copies into them. Nothing outlives the run: the next one starts with its own.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from core.report import RunReport


@dataclass
class Kept:
    report: RunReport | None = None
    """The run's last report."""
    prefect_error: str | None = None
    """The first Prefect API failure the run saw while publishing its artifacts."""


_CURRENT: ContextVar[Kept | None] = ContextVar("infra_run_kept", default=None)


@contextmanager
def keeping() -> Iterator[Kept]:
    """The run's `Kept` for the block: the one already kept for it (by the caller that waits for it), else a new
    one, dropped when the block ends."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    made = Kept()
    token = _CURRENT.set(made)
    try:
        yield made
    finally:
        _CURRENT.reset(token)


def kept() -> Kept:
    """The current run's `Kept`; outside a run, a new one that nothing else sees."""
    return _CURRENT.get() or Kept()


def keep(report: RunReport) -> RunReport:
    """Keep `report` as the current run's last one, and return it."""
    kept().report = report
    return report
