"""`infra-plan --plan=PATH [--pr=N]`: what the plan would change, live value → planned value, validated by a
server-side dry run; read-only.

Without --pr it only prints, through kubectl directly (no Prefect). With --pr it runs the `infra-plan` flow,
which also posts the PR's sticky plan comment and sets the `infra/plan` commit status on its head.
"""

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cli.args import Parser, add_output, pr_number, require_github
from cli.output import rendered
from core.conventions import DEFAULT_PLAN, DEFAULT_PLANS_DIR, PLAN_FILE, Env
from core.errors import InputError
from core.expiry import check_timing
from core.lifecycle.plan import PlanReview
from core.plan import Plan, load_plan
from core.policy import chosen_mode
from core.report import RunReport, StepResult, failure, plan_report
from core.settings import Settings
from core.state import Objects
from core.steps import Step
from integrations.command_help import (
    EXPIRY_ENVIRONMENT,
    GITHUB_ENVIRONMENT,
    KUBE_ENVIRONMENT,
    PREFECT_PR_ENVIRONMENT,
    TERMINAL_ENVIRONMENT,
    Usage,
    documented,
)
from integrations.process import run_and_exit
from integrations.secrets import mask

if TYPE_CHECKING:
    from integrations.kubectl import Kubectl


@dataclass(frozen=True)
class DirectPlanCluster:
    """The plan's cluster through kubectl, without Prefect."""

    settings: Settings

    def capture(self, plan: Plan) -> Objects:
        from integrations.plan_review import live_objects

        return live_objects(self._kubectl(plan), plan)

    def dry_run(self, plan: Plan, steps: Sequence[Step]) -> list[StepResult]:
        from integrations.plan_review import dry_run

        return dry_run(self._kubectl(plan), plan, steps)

    def _kubectl(self, plan: Plan) -> "Kubectl":
        from integrations.kubectl import kubectl_for

        return kubectl_for(self.settings, plan.context, plan.directory.resolve())


@dataclass(frozen=True)
class PrintedPlan:
    def report(self, plan: Plan, results: Sequence[StepResult], warnings: Sequence[str],
               blocking: Sequence[str] = ()) -> RunReport:
        return plan_report(results, plan.namespace, warnings, problems=blocking)

    def fail(self, plan: Plan, reason: str) -> RunReport:
        return failure(reason)


USAGE = Usage(
    examples=(f"infra-plan    # print what {DEFAULT_PLAN} would change; read-only",
              f"infra-plan --plan={DEFAULT_PLANS_DIR}/staging/{PLAN_FILE} --pr=42    # comment and set infra/plan",
              "infra-plan -o json    # the rows as JSON, alone on stdout"),
    environment=(*KUBE_ENVIRONMENT, *GITHUB_ENVIRONMENT, *PREFECT_PR_ENVIRONMENT,
                 (Env.POLICY, "warn (default) or block: whether a policy finding fails the review"),
                 *EXPIRY_ENVIRONMENT, *TERMINAL_ENVIRONMENT),
    exit_codes=(("0", "the plan was read and dry-run on the server (warnings are printed, not failures)"),
                ("1", "failed: the cluster could not be read, a server-side dry run refused a step, or the PR's "
                      "files differ from the checkout"),
                ("2", "bad input: a flag, the plan file or (with --pr) the GitHub environment; nothing ran")),
)


@dataclass(frozen=True)
class PlanOptions:
    plan: Path
    pr: int | None
    output: str


def parse(argv: Sequence[str]) -> PlanOptions:
    parser = Parser(prog="infra-plan", allow_abbrev=False,
                     description="Show what a plan.yaml would change (live → planned, validated by a server-side "
                                 "dry run); with --pr, post it as the PR's plan comment and set infra/plan.")
    parser.add_argument("--plan", default=DEFAULT_PLAN, help=f"the plan file (default {DEFAULT_PLAN})")
    parser.add_argument("--pr", help="the pull request to comment on (without it, the plan is only printed)")
    add_output(parser)
    documented(parser, USAGE)
    parsed = parser.parse_args(list(argv))
    return PlanOptions(Path(parsed.plan), pr_number(parsed.pr, "--pr") if parsed.pr is not None else None,
                       parsed.output)


def run_plan_flow(plan: str, pr: int) -> RunReport:
    """`--pr`: the infra-plan flow, run as the CLI runs every flow (cli.execute.run_flow)."""
    from cli.execute import run_flow

    def plan_flow() -> Callable[..., Any]:
        from flows.plan import infra_plan

        return partial(infra_plan, plan=plan, pr=pr)

    return run_flow(plan_flow)


def run(argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr,
        env: Mapping[str, str] = os.environ) -> int:
    try:
        options = parse(argv)
        policy = chosen_mode(None, env)
        settings = Settings.from_env(env)
        plan = load_plan(options.plan)
        check_timing(str(plan.path), plan.expires, datetime.now(UTC), env)
        if options.pr is not None:
            require_github(env)
    except InputError as error:
        print(mask(f"error: {error}"), file=err)
        return 2
    if options.pr is None:
        report = PlanReview(str(options.plan), load=lambda _: plan, cluster=DirectPlanCluster(settings),
                      reporter=PrintedPlan(), policy=policy).run()
    else:
        report = run_plan_flow(str(options.plan), options.pr)
    print(mask(rendered(report, options.output, out, env)), file=out, flush=True)
    return report.exit_code


def main() -> None:
    run_and_exit(lambda: run(sys.argv[1:]))
