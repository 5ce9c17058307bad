"""What a run reports: per-step results, the seed's JSON summary, artifact tables and markdown.

The JSON keeps the seed's fields (`ok`, `type`, `action`, `note`/`error`) and adds the rest; a consumer of the
old scripts' output keeps working.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.steps import Step
from core.vocabulary import Outcome, StepStatus


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: StepStatus
    attempts: int = 0
    duration_s: float = 0.0
    error: str | None = None
    before: Any = None
    after: Any = None
    batch: int = 1
    """How many steps shared the kubectl call that did this one (core.batch); `duration_s` is that call's."""

    @property
    def ok(self) -> bool:
        return self.status.ok

    def to_json(self, namespace: str) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "type": self.step.type}
        if self.step.action is not None:
            result["action"] = self.step.action
        if self.error is not None:
            result["error"] = self.error
        else:
            result["note"] = self.step.summary
        result.update(step=self.step.number, status=self.status, command=self.step.command(namespace),
                      attempts=self.attempts, duration_ms=round(self.duration_s * 1000, 1))
        if self.batch > 1:
            result["batch"] = self.batch
        for name in ("before", "after"):
            if getattr(self, name) is not None:
                result[name] = getattr(self, name)
        return result


def notes_in(lines: Iterable[str]) -> list[str]:
    """The text of the `note:` lines, for artifacts and the PR comment."""
    return [line.removeprefix("note: ") for line in lines if line.startswith("note: ")]


def preview_lines(steps: Iterable[Step], namespace: str) -> list[str]:
    """`preview: kubectl -n <ns> <args>` per step, each followed by its `note:` lines."""
    lines = []
    for step in steps:
        lines.append(f"preview: {step.command(namespace)}")
        lines.extend(f"note: {note}" for note in step.notes)
    return lines


def summary(results: Sequence[StepResult], namespace: str, executed: bool) -> dict[str, Any]:
    return {
        "ok": all(result.ok for result in results),
        "executed": executed,
        "namespace": namespace,
        "results": [result.to_json(namespace) for result in results],
    }


def summary_json(document: dict[str, Any]) -> str:
    """The summary as the seed printed it: the envelope's fields one per line, each result on one line.

    (Also ~10x faster than `json.dumps(indent=2)`, which falls back to the pure-Python encoder.)
    """
    fields = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in document.items() if key != "results"]
    results = ",\n".join(f"    {json.dumps(result)}" for result in document["results"])
    body = f'  "results": [\n{results}\n  ]' if results else '  "results": []'
    return "{\n" + ",\n".join([*fields, body]) + "\n}"


def outcome(document: dict[str, Any]) -> Outcome:
    """The contract's last line."""
    return Outcome.SUCCEEDED if document["ok"] else Outcome.FAILED


def _compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def table_rows(results: Sequence[StepResult], namespace: str) -> list[dict[str, Any]]:
    """One row per step for a Prefect table artifact."""
    return [
        {
            "step": result.step.number,
            "command": result.step.command(namespace),
            "status": result.status,
            "attempts": result.attempts,
            "duration_ms": round(result.duration_s * 1000, 1),
            "shared_call": result.batch,
            "before": _compact(result.before),
            "after": _compact(result.after),
            "error": result.error or "",
        }
        for result in results
    ]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(title: str, results: Sequence[StepResult], namespace: str, executed: bool,
             notes: Sequence[str] = ()) -> str:
    """A human summary for the Prefect UI and the PR comment: the step table, then the JSON summary."""
    document = summary(results, namespace, executed)
    mode = "executed" if executed else "preview (nothing changed)"
    lines = [f"### {title}", "", f"Namespace `{namespace}`, {mode}: **{outcome(document)}**", ""]
    lines += [f"> note: {_cell(note)}" for note in notes]
    if notes:
        lines.append("")
    lines += ["| step | command | status | attempts | ms | error |", "|---|---|---|---|---|---|"]
    for row in table_rows(results, namespace):
        lines.append(f"| {row['step']} | `{_cell(row['command'])}` | {row['status']} | {row['attempts']} | "
                     f"{row['duration_ms']} | {_cell(row['error'])} |")
    lines += ["", "<details><summary>JSON summary</summary>", "", "```json", summary_json(document), "```",
              "", "</details>"]
    return "\n".join(lines)


@dataclass(frozen=True)
class RunReport:
    """Everything a run prints, in order: `preview:`/`note:` lines, the JSON summary, the last word."""

    lines: tuple[str, ...]
    document: dict[str, Any] | None
    final: Outcome

    @property
    def exit_code(self) -> int:
        return 1 if self.final == Outcome.FAILED else 0

    def render(self) -> str:
        parts = list(self.lines)
        if self.document is not None:
            parts.append(summary_json(self.document))
        parts.append(self.final)
        return "\n".join(parts)


def failure(reason: str, lines: Sequence[str] = ()) -> RunReport:
    """A run that stopped before it could report its steps: one `error:` line saying why, then `failed`."""
    return RunReport((*lines, f"error: {reason}"), None, Outcome.FAILED)


def with_lines(report: RunReport, lines: Sequence[str]) -> RunReport:
    """`report` with more `note:` lines before its JSON summary."""
    return replace(report, lines=(*report.lines, *lines)) if lines else report


def refusal(reason: str, lines: Sequence[str] = ()) -> RunReport:
    """A failed gate: say why and change nothing (exit 0, `skipped`)."""
    return RunReport((*lines, f"Refusing to execute: {reason}."), None, Outcome.SKIPPED)


def finished(results: Sequence[StepResult], namespace: str, executed: bool, lines: Sequence[str] = ()) -> RunReport:
    document = summary(results, namespace, executed)
    return RunReport(tuple(lines), document, outcome(document))
