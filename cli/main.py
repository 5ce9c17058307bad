"""`infra-apply` and `infra-rollback`: validate, then preview (default) or hand over to the Prefect flow.

The preview path imports only the core, so it costs milliseconds; Prefect is imported only to execute.
"""

import sys
from collections.abc import Sequence
from typing import TextIO

from cli.args import Options, parse
from core.errors import InputError
from core.plan import Plan, load_plan
from core.report import StepResult, outcome, preview_lines, summary, summary_json
from core.steps import SEED_FALLBACK_NOTE, Step, apply_steps, seed_rollback_steps


def preview_steps(options: Options, plan: Plan) -> tuple[list[Step], list[str]]:
    """The steps a preview shows, and the notes that explain where they came from."""
    if options.flow == "apply":
        return apply_steps(plan), []
    return seed_rollback_steps(plan), [SEED_FALLBACK_NOTE]


def preview(options: Options, plan: Plan, out: TextIO) -> int:
    steps, notes = preview_steps(options, plan)
    for line in preview_lines(steps, plan.namespace):
        print(line, file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    document = summary([StepResult(step, "previewed") for step in steps], plan.namespace, executed=False)
    print(summary_json(document), file=out)
    print(outcome(document), file=out)
    return 0


def refuse(reason: str, out: TextIO) -> int:
    """A failed gate: say why, change nothing, exit 0 (the contract's `skipped`)."""
    print(f"Refusing to execute: {reason}.", file=out)
    print("skipped", file=out)
    return 0


def run(flow: str, argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        options = parse(flow, argv)
        plan = load_plan(options.plan)
    except InputError as error:
        print(f"error: {error}", file=err)
        return 2
    if not options.execute:
        return preview(options, plan, out)
    if options.pr is None:
        return refuse("--execute needs --pr=<number> (or PRNUM)", out)
    return refuse("the GitHub label gate is not wired in yet, so nothing executes", out)
