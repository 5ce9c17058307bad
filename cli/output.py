"""How a report reaches the terminal: the seed's text (default), or `-o json`; colour only on a terminal without
NO_COLOR; and, on a terminal, a line on stderr for every finished Prefect task while `--execute` runs."""

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from core.report import RunReport
from core.vocabulary import Outcome, OutputFormat

OUTPUT_FORMATS = tuple(format.value for format in OutputFormat)

_COLOURS = {Outcome.SUCCEEDED: "32", Outcome.FAILED: "31", Outcome.SKIPPED: "33"}
"""ANSI: green, red, yellow."""


def colour_on(stream: TextIO, env: Mapping[str, str]) -> bool:
    """https://no-color.org: any non-empty NO_COLOR turns colour off; so does anything but a terminal."""
    return stream.isatty() and not env.get("NO_COLOR")


def coloured(text: str, outcome: Outcome, on: bool) -> str:
    return f"\x1b[{_COLOURS[outcome]}m{text}\x1b[0m" if on else text


def json_summary(report: RunReport) -> str:
    """The JSON summary alone: the seed's fields (`ok`, `executed`, `namespace`, `results`), plus the last word
    as `outcome` and the text lines before it (`preview:`, `note:`, `error:`, a refusal) as `lines`."""
    document = report.document or {"ok": False, "executed": False, "results": []}
    return json.dumps({**document, "outcome": report.final, "lines": list(report.lines)}, indent=2)


def rendered(report: RunReport, output: str, out: TextIO, env: Mapping[str, str]) -> str:
    if output == OutputFormat.JSON:
        return json_summary(report)
    text = report.render()
    if not colour_on(out, env):
        return text
    body, _, last = text.rpartition("\n")
    return f"{body}\n{coloured(last, report.final, True)}" if body else coloured(last, report.final, True)


class FinishedTasks(logging.Handler):
    """Prefect's engine logs `Finished in state <State>(...)` on `prefect.task_runs` when a task run ends."""

    def __init__(self, err: TextIO, colour: bool) -> None:
        super().__init__(logging.INFO)
        self.err = err
        self.colour = colour
        self.started = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith("Finished in state "):
            return
        state = message.removeprefix("Finished in state ").split("(", 1)[0]
        task, name = getattr(record, "task_name", ""), getattr(record, "task_run_name", "")
        if not name or name.startswith(f"{task}-"):  # Prefect's generated name: show the task's own
            name = task.replace("_", " ")
        outcome = Outcome.SUCCEEDED if state == "Completed" else Outcome.FAILED
        line = f"[{time.monotonic() - self.started:6.1f} s] {name}: {coloured(state, outcome, self.colour)}"
        self.err.write(line + "\n")
        self.err.flush()


@contextmanager
def progress(err: TextIO, env: Mapping[str, str]) -> Iterator[None]:
    """On a terminal, one line per finished task on `err` as it happens; elsewhere nothing at all. (Completed
    tasks log at INFO: PREFECT_LOGGING_LEVEL=WARNING leaves only the failed ones.)"""
    if not err.isatty():
        yield
        return
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # Prefect's own configuration would drop a handler added before it
    handler = FinishedTasks(err, colour_on(err, env))
    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
