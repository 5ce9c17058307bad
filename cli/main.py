"""`infra-apply` and `infra-rollback`: validate, then preview (default) or hand over to the Prefect flow.

The preview path imports only the core and the kubectl wrapper, so it costs milliseconds; Prefect is imported
only to execute.
"""

import sys
from collections.abc import Sequence
from typing import TextIO

from cli.args import Options, parse
from core.errors import InputError
from core.plan import Plan, load_plan
from core.report import RunReport, StepResult, finished, preview_lines, refusal
from core.reversal import plan_steps
from integrations.kubectl import Kubectl
from integrations.records import load_for_preview

PREVIEW_RECORD_TIMEOUT_S = 5.0


def preview(options: Options, plan: Plan) -> RunReport:
    """The same preview the flow shows; for a rollback, the record is looked up (cluster, then mirror)."""
    record, where = None, None
    if options.flow == "rollback":
        kubectl = Kubectl(context=plan.context, cwd=plan.directory, timeout_s=PREVIEW_RECORD_TIMEOUT_S)
        record, where = load_for_preview(kubectl, plan)
    steps, notes = plan_steps(plan, options.flow, record)
    lines = [*preview_lines(steps, plan.namespace), *(f"note: {note}" for note in [where, *notes] if note)]
    return finished([StepResult(step, "previewed") for step in steps], plan.namespace, False, lines)


def run(flow: str, argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        options = parse(flow, argv)
        plan = load_plan(options.plan)
    except InputError as error:
        print(f"error: {error}", file=err)
        return 2
    if not options.execute:
        report = preview(options, plan)
    elif options.pr is None:
        report = refusal("--execute needs --pr=<number> (or PRNUM)")
    else:
        from cli.execute import execute

        report = execute(options)
    print(report.render(), file=out)
    return report.exit_code
