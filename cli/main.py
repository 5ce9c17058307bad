"""`infra-apply` and `infra-rollback`: validate, then preview (default) or hand over to the Prefect flow.

The preview runs the same Apply/Rollback action as the flow, with preview on and interfaces that import only
the core and the kubectl wrapper, so it costs milliseconds; Prefect is imported only to execute.
"""

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TextIO

from cli.adapters import DirectRecords, SummaryReporter, read_live
from cli.args import Options, parse, require_github
from cli.output import progress, rendered
from core.conventions import Flow
from core.errors import InputError
from core.expiry import check_timing
from core.lifecycle.apply import Apply
from core.lifecycle.rollback import Rollback
from core.plan import Plan, load_plan
from core.policy import PolicyMode, chosen_mode
from core.report import RunReport
from core.settings import Settings
from integrations.kubeconfig import allowed_contexts
from integrations.secrets import mask


def preview(options: Options, plan: Plan, settings: Settings | None = None,
            policy: PolicyMode = PolicyMode.WARN) -> RunReport:
    """The same preview the flow shows (an apply's with the policy findings); for a rollback, the record is
    looked up (cluster, then mirror). Without `settings` (a caller in-process), this process's environment's."""
    settings = settings or Settings.from_env(os.environ)
    records = DirectRecords(settings)
    if options.flow == Flow.APPLY:
        return Apply(str(plan.path), load=lambda path: plan, records=records, reporter=SummaryReporter(),
                     live=partial(read_live, settings), contexts=allowed_contexts, policy=policy).run()
    return Rollback(str(plan.path), load=lambda path: plan, records=records, reporter=SummaryReporter(),
                    contexts=allowed_contexts).run()


def run(flow: str, argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr,
        env: Mapping[str, str] = os.environ) -> int:
    try:
        options = parse(flow, argv, env)
        settings = Settings.from_env(env)
        policy = chosen_mode(None, env) if options.flow == Flow.APPLY else PolicyMode.WARN
        if options.execute and options.pr is None:
            raise InputError("arguments", "--pr", "--execute needs a pull request: pass --pr=<number> or set PRNUM")
        plan = load_plan(options.plan)
        if options.flow == Flow.APPLY:
            check_timing(str(plan.path), plan.expires, datetime.now(UTC), env)
        if options.execute:
            require_github(env)
    except InputError as error:
        print(mask(f"error: {error}"), file=err)
        return 2
    if not options.execute:
        report = preview(options, plan, settings, policy)
    else:
        from cli.execute import execute

        with progress(err, env):
            report = execute(options)
    try:
        print(mask(rendered(report, options.output, out, env)), file=out, flush=True)
    except BrokenPipeError:  # `infra-rollback | head`: the reader left; say nothing more, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return report.exit_code
