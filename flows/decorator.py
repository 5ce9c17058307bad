"""The `@flow` of our flows: Prefect's, with parameters that are plain JSON stored as they are, and a direct call
that returns the run's report whatever its outcome.

Prefect serializes a run's parameters with FastAPI's `jsonable_encoder`, importing FastAPI on the first flow call of
a process (0.1-0.2 s of every CLI run's start, before its first kubectl call). Our flows take strings, numbers,
booleans and lists of them, which are JSON already; anything else still goes through Prefect's own serializer.

A run's body runs under `integrations.stopping.stop_before_lock`: SIGTERM or SIGINT before it takes its lock stops
it in one line (nothing was changed), where Prefect's own handler would report a crash. That line, and the one of a
run stopped while it held the lock, also goes to the run's log: a deployment run cancelled from the UI (its worker
sends it SIGTERM) has no terminal to print it on.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from prefect import Flow, State, get_run_logger

from core.report import RunReport
from integrations.stopping import stop_before_lock
from tasks.kept import keeping

STOPPED = "error: stopped by "

P = ParamSpec("P")
R = TypeVar("R")


def plain_json(value: object) -> bool:
    """Whether `value` is JSON as it stands: None, a bool, number or string, or a list or string-keyed dict of
    those."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(plain_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and plain_json(item) for key, item in value.items())
    return False


def stoppable(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, run under `stop_before_lock`."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with stop_before_lock():
            result = function(*args, **kwargs)
        report = result.data if isinstance(result, State) else result
        for line in report.lines if isinstance(report, RunReport) else ():
            if line.startswith(STOPPED):
                get_run_logger().error("%s", line)
        return result

    return run


class PlainJsonFlow(Flow[P, R]):
    def __init__(self, fn: Callable[P, R], **options: Any) -> None:
        super().__init__(fn, **options)  # name, description and version (its file's hash) from the flow's own
        self.fn = stoppable(fn)

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if all(plain_json(value) for value in parameters.values()):
            return dict(parameters)
        return super().serialize_parameters(parameters)

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        """A call with `return_state=True` (the CLI's) is Prefect's. A direct call (`infra_apply(...)` from Python,
        or as a subflow) returns the run's RunReport, also when the run ends Cancelled (`Refused`) or Failed:
        `report.final` says what happened. Prefect would raise there, and cannot even raise cleanly, a report not
        being an exception (TypeError). Anything else (an exception the run raised) is raised as Prefect does."""
        state = super().__call__(*args, return_state=True, **kwargs)
        if return_state:
            return state
        outcome = state.result(raise_on_failure=False)
        return outcome if isinstance(outcome, RunReport) else state.result()


def flow(**options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]:
    """`prefect.flow(**options)`, making a PlainJsonFlow whose runs each keep their own `tasks.kept.Kept` (the
    caller's, when it made one before the run)."""

    def decorate(function: Callable[P, R]) -> Flow[P, R]:
        @wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with keeping():
                return function(*args, **kwargs)

        return PlainJsonFlow(run, **options)

    return decorate
