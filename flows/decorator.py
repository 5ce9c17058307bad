"""The `@flow` of our flows: Prefect's, with parameters that are plain JSON stored as they are, and a direct call
that returns the run's report whatever its outcome.

Prefect serializes a run's parameters with FastAPI's `jsonable_encoder`, importing FastAPI on the first flow call of
a process (0.1-0.2 s of every CLI run's start, before its first kubectl call). Our flows take strings, numbers,
booleans and lists of them, which are JSON already; anything else still goes through Prefect's own serializer.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from prefect import Flow

from core.report import RunReport
from tasks.kept import keeping

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


class PlainJsonFlow(Flow[P, R]):
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
