"""What a run reports: per-step results, the seed's JSON summary, artifact tables and markdown.

The JSON keeps the seed's fields (`ok`, `type`, `action`, `note`/`error`) and adds the rest; a consumer of the
old scripts' output keeps working.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from core.changes import FieldChange, step_changes
from core.conventions import EARLIER_RUNS as EARLIER_RUNS
from core.conventions import LABELS, RUN_SEPARATOR, Flow
from core.steps import Step
from core.vocabulary import Outcome, StepStatus

GITHUB_COMMENT_LIMIT = 65536
"""GitHub refuses a comment body longer than this (422)."""
MAX_EARLIER_RUNS = 10


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

    @property
    def changes(self) -> list[FieldChange]:
        """One row per object and field the step changed (or, not run yet, sets); none for checks and hints."""
        landing = self.step.landing
        if landing is None:
            return []
        return step_changes(landing, self.before, self.after)

    def to_json(self, namespace: str) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "type": self.step.type}
        if self.step.action is not None:
            result["action"] = self.step.action
        if self.error is not None:
            result["error"] = self.error
        else:
            result["note"] = future(self.step.summary) if self.status == StepStatus.PREVIEWED else self.step.summary
        result.update(step=self.step.number, status=self.status, command=self.step.command(namespace),
                      attempts=self.attempts, duration_ms=round(self.duration_s * 1000, 1))
        if self.batch > 1:
            result["batch"] = self.batch
        if self.changes:
            result["changes"] = [change.to_json() for change in self.changes]
        for name in ("before", "after"):
            if getattr(self, name) is not None:
                result[name] = getattr(self, name)
        return result


_FUTURE = {"scaled": "scale", "updated": "update", "applied": "apply", "restored": "restore", "deleted": "delete",
           "ran": "run", "rolled": "roll", "replaced": "replace", "patched": "patch", "checked": "check"}


def future(summary: str) -> str:
    """A step's summary ("scaled deployment/web to 4") as a preview says it: "will scale deployment/web to 4"."""
    verb, space, rest = summary.partition(" ")
    return f"will {_FUTURE[verb]}{space}{rest}" if verb in _FUTURE else f"will run: {summary}"


@dataclass(frozen=True)
class Provenance:
    """Who approved an execution, at which commit, where its record is, and which Prefect run did it."""

    approver: str | None
    permission: str | None
    labeled_at: str | None
    head_sha: str | None
    record: str
    plan_digest: str
    record_digest: str | None = None
    """sha256 of the signed record as the run last stored it; None when the run stored none."""
    run_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """One line: `approved by alice (admin, labeled ...) at head abc1234; record ... (plan digest ...)`."""
        labeled = f", labeled {self.labeled_at}" if self.labeled_at else ""
        record = f"record {self.record} (plan digest {self.plan_digest[:12]}"
        record += f", record digest {self.record_digest[:12]})" if self.record_digest else ")"
        run = f"; Prefect run {self.run_url}" if self.run_url else ""
        return (f"approved by {self.approver or 'unknown'} ({self.permission or 'unknown'}{labeled}) at head "
                f"{(self.head_sha or 'unknown')[:12]}; {record}{run}")


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


def summary(results: Sequence[StepResult], namespace: str, executed: bool,
            provenance: Provenance | None = None) -> dict[str, Any]:
    document = {
        "ok": all(result.ok for result in results),
        "executed": executed,
        "namespace": namespace,
        "results": [result.to_json(namespace) for result in results],
    }
    return {**document, "provenance": provenance.to_json()} if provenance is not None else document


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


def _duration(result: StepResult) -> str:
    return f"{round(result.duration_s * 1000)} ms"


def change_line(change: FieldChange, result: StepResult) -> str:
    """`change: deployment/web replicas: 2 → 4 (succeeded, 1 attempt, 35 ms)` for the CLI."""
    attempts = f"{result.attempts} attempt{'s' if result.attempts != 1 else ''}"
    how = result.status if result.status == StepStatus.PREVIEWED else \
        f"{result.status}, {attempts}, {_duration(result)}"
    return f"change: {change.obj} {change.field}: {change.before} → {change.after} ({how})"


def change_lines(results: Sequence[StepResult]) -> list[str]:
    return [change_line(change, result) for result in results for change in result.changes]


def table_rows(results: Sequence[StepResult], namespace: str) -> list[dict[str, Any]]:
    """One row per object and field for a Prefect table artifact (a step without changes, such as a rollout
    check, is one row naming what it checked); the kubectl command is the last column."""
    rows = []
    for result in results:
        changes = result.changes or [FieldChange(result.step.obj or "", result.step.summary, "", "")]
        rows += [{"object": change.obj, "field": change.field, "before": change.before, "after": change.after,
                  "status": result.status, "attempts": result.attempts,
                  "duration_ms": round(result.duration_s * 1000, 1), "error": result.error or "",
                  "step": result.step.number, "command": result.step.command(namespace)}
                 for change in changes]
    return rows


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def change_table(results: Sequence[StepResult], namespace: str) -> list[str]:
    """The reviewer's table: object · field · before → after · status · attempts · duration, then the kubectl
    commands collapsed under it."""
    lines = ["| object | field | before → after | status | attempts | duration |", "|---|---|---|---|---|---|"]
    for row in table_rows(results, namespace):
        change = f"{_cell(row['before'])} → **{_cell(row['after'])}**" if row["before"] or row["after"] else ""
        status = f"{row['status']}: {_cell(row['error'])}" if row["error"] else row["status"]
        lines.append(f"| `{_cell(row['object'])}` | {_cell(row['field'])} | {change} | {status} | "
                     f"{row['attempts']} | {row['duration_ms']:g} ms |")
    lines += ["", "<details><summary>kubectl commands</summary>", "", "| step | command |", "|---|---|"]
    lines += [f"| {result.step.number} | `{_cell(result.step.command(namespace))}` |" for result in results]
    lines += ["", "</details>"]
    return lines


def markdown(title: str, results: Sequence[StepResult], namespace: str, executed: bool,
             notes: Sequence[str] = (), links: Sequence[tuple[str, str]] = (),
             provenance: Provenance | None = None, flow: Flow | None = None) -> str:
    """A human summary for the Prefect UI and the PR comment: links (the PR, the Prefect run), who approved it
    and where it is recorded, the change table, then the JSON summary."""
    document = summary(results, namespace, executed, provenance)
    mode = "executed" if executed else "preview (nothing changed)"
    lines = [f"### {title}", "", f"Namespace `{namespace}`, {mode}: **{outcome(document)}**", ""]
    if flow is not None:
        lines += [f"**{change_count(results)}** · next: {next_step(flow, bool(document['ok']))}", ""]
    if links:
        lines += [" · ".join(f"[{text}]({url})" for text, url in links), ""]
    if provenance is not None:
        lines += [f"**Provenance**: {_cell(provenance.text())}", ""]
    lines += [f"> note: {_cell(note)}" for note in notes]
    if notes:
        lines.append("")
    lines += change_table(results, namespace)
    lines += ["", "<details><summary>JSON summary</summary>", "", "```json", summary_json(document), "```",
              "", "</details>"]
    return "\n".join(lines)


def change_count(results: Sequence[StepResult]) -> str:
    """The summary line, as Atlantis prints one: "3 objects, 7 fields" (fields that change)."""
    changes = [change for result in results for change in result.changes if change.changed]
    objects = len({change.obj for change in changes})
    return f"{objects} object{'s' if objects != 1 else ''}, {len(changes)} field{'s' if len(changes) != 1 else ''}"


def next_step(flow: Flow, ok: bool) -> str:
    """What a reader of the comment does next."""
    apply, rollback = LABELS[Flow.APPLY], LABELS[Flow.ROLLBACK]
    if flow == Flow.PLAN:
        return f"add `{apply}` to apply" if ok else "fix the plan (a dry run failed) and push: it is planned again"
    if flow == Flow.APPLY:
        return f"add `{rollback}` to roll back" if ok else \
            f"add `{rollback}` to undo the steps that ran, or fix the cause and add `{apply}` again"
    return "merge or close the pull request" if ok else f"fix the cause and add `{rollback}` again"


def _dry_run(result: StepResult) -> str:
    return "passed" if result.ok else f"failed: {result.error or 'rejected'}"


def plan_lines(results: Sequence[StepResult], warnings: Sequence[str]) -> list[str]:
    """`change: deployment/web replicas: 2 → 4 (dry run passed)` per object and field, then `warning:` lines."""
    lines = []
    for result in results:
        for change in result.changes:
            same = ", no change" if not change.changed else ""
            lines.append(f"change: {change.obj} {change.field}: {change.before} → {change.after} "
                         f"(dry run {_dry_run(result)}{same})")
    return [*lines, *(f"warning: {warning}" for warning in warnings)]


def plan_markdown(title: str, results: Sequence[StepResult], namespace: str, warnings: Sequence[str],
                  links: Sequence[tuple[str, str]] = ()) -> str:
    """The plan comment: live → planned per object and field with its dry-run verdict, the warnings, and the
    dry-run commands collapsed."""
    ok = all(result.ok for result in results)
    lines = [f"### {title}", "", f"Namespace `{namespace}`: live → planned, validated by a server-side dry run: "
             f"**{'passed' if ok else 'failed'}**", "",
             f"**{change_count(results)}** · next: {next_step(Flow.PLAN, ok)}", ""]
    if links:
        lines += [" · ".join(f"[{text}]({url})" for text, url in links), ""]
    lines += [f"> :warning: {_cell(warning)}" for warning in warnings]
    if warnings:
        lines.append("")
    lines += ["| object | field | live → planned | dry run |", "|---|---|---|---|"]
    for result in results:
        for change in result.changes:
            planned = f"**{_cell(change.after)}**" if change.changed else f"{_cell(change.after)} (no change)"
            lines.append(f"| `{_cell(change.obj)}` | {_cell(change.field)} | {_cell(change.before)} → {planned} | "
                         f"{_cell(_dry_run(result))} |")
    lines += ["", "<details><summary>kubectl dry-run commands</summary>", "", "| step | command |", "|---|---|"]
    lines += [f"| {result.step.number} | `{_cell(result.step.command(namespace))}` |" for result in results]
    lines += ["", "</details>"]
    return "\n".join(lines)


def sticky_body(marker: str, newest: str, previous: str | None) -> str:
    """A sticky comment: `marker`, the newest run, then the earlier runs (newest first), each collapsed. The
    oldest are dropped past MAX_EARLIER_RUNS or GitHub's size limit; the same newest run again changes nothing."""
    earlier: list[str] = []
    if previous is not None:
        text = previous.split("\n", 1)[1] if previous.startswith(marker) and "\n" in previous else ""
        latest, _, older = text.partition(EARLIER_RUNS)
        if latest.strip() == newest.strip():  # the same run again (a retried write): nothing to add
            return previous
        earlier = [_collapsed(latest.strip())] if latest.strip() else []
        earlier += [run.strip() for run in older.split(RUN_SEPARATOR)[1:] if run.strip()]
    earlier = earlier[:MAX_EARLIER_RUNS]
    while True:
        body = "\n".join([marker, newest.strip()])
        if earlier:
            runs = [f"{RUN_SEPARATOR}\n{run}" for run in earlier]
            body += f"\n\n{EARLIER_RUNS}\n**Earlier runs** (newest first)\n\n" + "\n\n".join(runs)
        if len(body) <= GITHUB_COMMENT_LIMIT or not earlier:
            return body[:GITHUB_COMMENT_LIMIT]
        earlier.pop()


def _collapsed(run: str) -> str:
    """An earlier run under its own title, collapsed (its own <details> blocks stay inside)."""
    if run.startswith("<details>"):
        return run
    title, _, rest = run.partition("\n")
    return f"<details><summary>{title.lstrip('#').strip()}</summary>\n\n{rest.strip()}\n\n</details>"


@dataclass(frozen=True)
class RunReport:
    """Everything a run prints, in order: `preview:`/`note:` lines, a `change:` line per object and field, the
    JSON summary, the last word."""

    lines: tuple[str, ...]
    document: dict[str, Any] | None
    final: Outcome
    changes: tuple[str, ...] = ()
    closing: tuple[str, ...] = ()
    """Lines between the JSON summary and the last word (a preview's `previewed: nothing changed`)."""

    @property
    def exit_code(self) -> int:
        return 1 if self.final == Outcome.FAILED else 0

    def render(self) -> str:
        parts = [*self.lines, *self.changes]
        if self.document is not None:
            parts.append(summary_json(self.document))
        parts += [*self.closing, self.final]
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


def error_lines(results: Sequence[StepResult]) -> list[str]:
    """`error: <object>: <reason>` for each step that failed, each with its own object's error."""
    return [f"error: {result.step.obj or f'step {result.step.number}'}: {result.error}" for result in results
            if result.status == StepStatus.FAILED and result.error]


def finished(results: Sequence[StepResult], namespace: str, executed: bool, lines: Sequence[str] = (),
             provenance: Provenance | None = None) -> RunReport:
    document = summary(results, namespace, executed, provenance)
    provenance_line = [f"note: {provenance.text()}"] if provenance is not None else []
    return RunReport((*lines, *provenance_line, *error_lines(results)), document, outcome(document),
                     tuple(change_lines(results)))


def errors_in(report: RunReport) -> list[str]:
    """The text of the report's `error:` lines."""
    return [line.removeprefix("error: ") for line in report.lines if line.startswith("error: ")]


def failure_reason(report: RunReport) -> str:
    """One line saying why a run failed: how many steps failed and the first error, or the error that stopped
    the run before any step (an unreachable cluster: there are no steps to count)."""
    results = (report.document or {}).get("results", [])
    failed = sum(not result["ok"] for result in results)
    errors = errors_in(report)
    if failed:
        first = f": {errors[0]}" if errors else ""
        return f"{failed} of {len(results)} step{'s' if len(results) != 1 else ''} failed{first}"
    if errors:
        return errors[-1]
    notes = [line.removeprefix("note: ") for line in report.lines if line.startswith("note: ")]
    return notes[-1] if notes else "the run failed"


def plan_report(results: Sequence[StepResult], namespace: str, warnings: Sequence[str],
                lines: Sequence[str] = (), problems: Sequence[str] = ()) -> RunReport:
    """infra-plan's report: the change and warning lines, `error:` lines for `problems` (what makes the review
    fail besides a dry run, e.g. a checkout that is not the PR's head), the JSON summary (the dry-run steps,
    `warnings`, `errors`), and `succeeded` when every step passed its dry run and there is no problem."""
    document = {**summary(results, namespace, False), "warnings": list(warnings)}
    if problems:
        document.update(ok=False, errors=list(problems))
    errors = [f"error: {problem}" for problem in problems]
    return RunReport((*lines, *plan_lines(results, warnings), *errors), document, outcome(document))
