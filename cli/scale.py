"""`infra-scale`: turn desired sizes into a plan (default: written locally and previewed), or a pull request.

    infra-scale --dry-run --target=staging --namespace=assistant-staging \\
        --workload=Deployment:web:2 --workload=Deployment:api:2
    infra-scale --desired=ops/desired/staging.yaml --execute      # opens or updates the target's PR

The dry run calls the core and the integrations directly (no Prefect import, milliseconds); `--execute` runs
the `infra-scale` flow so the run is recorded like a scheduled one. Bad input (flags, desired-state file, a
workload that does not exist) prints one `error:` line and exits 2 with nothing written.
"""

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any, TextIO

from cli.args import Parser, add_output, require_github
from cli.output import progress, rendered
from core.conventions import DEFAULT_PLANS_DIR, PLAN_FILE, Flow
from core.desired import DesiredState, desired_from
from core.diff import LIVE_RESOURCES, Diff
from core.errors import InputError
from core.lifecycle.scale import Scale, WrittenPlan
from core.plan_writer import scale_report
from core.report import RunReport
from core.retry import KUBECTL_RETRY
from core.settings import Settings
from core.vocabulary import OutputFormat
from integrations.command_help import (
    GITHUB_ENVIRONMENT,
    KUBE_ENVIRONMENT,
    PREFECT_ENVIRONMENT,
    TERMINAL_ENVIRONMENT,
    Usage,
    documented,
)
from integrations.kubectl import KubectlError, get_items, kubectl_for
from integrations.process import run_and_exit


@dataclass(frozen=True)
class ScaleOptions:
    desired: str | None
    target: str | None
    namespace: str | None
    workloads: tuple[str, ...]
    execute: bool
    base: str
    plans_dir: str
    output: OutputFormat = OutputFormat.TEXT


USAGE = Usage(
    examples=("infra-scale --desired=ops/desired/staging.yaml    # write and preview the plan; nothing is pushed",
              "infra-scale --dry-run --target=staging --namespace=assistant-staging --workload=Deployment:web:2",
              "infra-scale --desired=ops/desired/prod.yaml --execute -o json    # open or update the target's PR"),
    environment=(*KUBE_ENVIRONMENT, *GITHUB_ENVIRONMENT, *PREFECT_ENVIRONMENT, *TERMINAL_ENVIRONMENT),
    exit_codes=(("0", "succeeded: the plan was written (with --execute, pushed) or nothing differs; or skipped: "
                      "the open pull request was left alone (a note says why)"),
                ("1", "failed: the live state could not be read, or GitHub refused the pull request"),
                ("2", "bad input: a flag, the desired-state file, a workload or the environment; nothing written")),
)


def parse(argv: Sequence[str]) -> ScaleOptions:
    parser = Parser(prog=Flow.SCALE.flow_name, allow_abbrev=False,
                     description="Write a plan with what differs between desired and live sizes; "
                                 "with --execute, open or update the target's pull request.")
    documented(parser, USAGE)
    parser.add_argument("--desired", help="a desired-state file (e.g. ops/desired/staging.yaml)")
    parser.add_argument("--target", help="the plan's target (e.g. staging)")
    parser.add_argument("--namespace", help="the Kubernetes namespace")
    parser.add_argument("--workload", action="append", default=[], help="KIND:NAME:REPLICAS, repeatable")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="write the plan locally and preview it (default)")
    mode.add_argument("--execute", action="store_true", help="also open or update the target's pull request")
    parser.add_argument("--base", default="main", help="the PR's base branch (default main)")
    parser.add_argument("--plans-dir", default=DEFAULT_PLANS_DIR, help=f"default {DEFAULT_PLANS_DIR}")
    add_output(parser)
    parsed = parser.parse_args(list(argv))
    return ScaleOptions(parsed.desired, parsed.target, parsed.namespace, tuple(parsed.workload), parsed.execute,
                        parsed.base, parsed.plans_dir, parsed.output)


def _check_execute(options: ScaleOptions, state: DesiredState, env: Mapping[str, str]) -> None:
    """What --execute needs, checked before anything is read or written."""
    from integrations.pull_request import repository_paths

    require_github(env)
    repository_paths(options.plans_dir, state.target, [PLAN_FILE])


@dataclass(frozen=True)
class RetriedLiveState:
    """The live state through kubectl, retried on transient failures with the flow's policy."""

    settings: Settings

    def read(self, state: DesiredState) -> list[dict[str, Any]]:
        kubectl = kubectl_for(self.settings, state.context)
        return KUBECTL_RETRY.call(lambda: get_items(kubectl, state.namespace, LIVE_RESOURCES))


@dataclass(frozen=True)
class LocalPlanFiles:
    def write(self, state: DesiredState, changes: Diff, plans_dir: str, day: date) -> WrittenPlan:
        from integrations.pull_request import write_plan_locally

        return write_plan_locally(state, changes, plans_dir, day)


@dataclass(frozen=True)
class SilentReporter:
    """The CLI prints the report itself; nothing else to publish."""

    def report(self, state: DesiredState, written: WrittenPlan | None, report: RunReport) -> None:
        return None


def dry_run(options: ScaleOptions, state: DesiredState, settings: Settings) -> RunReport:
    """The Scale action without pull requests: read, diff, write the plan locally; no Prefect, no GitHub."""
    action = Scale(options.desired, options.target, options.namespace, options.workloads, options.plans_dir,
                   options.base, load=lambda *_: state, live=RetriedLiveState(settings), plans=LocalPlanFiles(),
                   reporter=SilentReporter())
    try:
        return action.run()
    except KubectlError as error:
        return scale_report(state, None, None, None, False, error=f"cannot read the live state: {error}")


def execute(options: ScaleOptions, state: DesiredState) -> RunReport:
    """The same through the Prefect flow, which also publishes the pull request, run as the CLI runs every flow
    (cli.execute.run_flow). Bad input stops it as it stops the dry run; GitHub or the cluster failing is its
    report's error."""
    from cli.execute import run_flow

    def scale_flow() -> Callable[..., Any]:
        from flows.scale import infra_scale

        return partial(infra_scale, desired=options.desired, target=options.target, namespace=options.namespace,
                       workloads=list(options.workloads), execute=True, base=options.base,
                       plans_dir=options.plans_dir)

    def raised(error: BaseException) -> RunReport | None:
        from integrations.github import GitHubError

        if isinstance(error, InputError):
            raise error
        if isinstance(error, GitHubError | KubectlError):
            return scale_report(state, None, None, None, True, error=str(error))
        return None

    return run_flow(scale_flow, raised)


def run(argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr,
        env: Mapping[str, str] = os.environ) -> int:
    try:
        options = parse(argv)
        state = desired_from(options.desired, options.target, options.namespace, options.workloads)
        settings = Settings.from_env(env)
        if options.execute:
            _check_execute(options, state, env)
            with progress(err, env):
                report = execute(options, state)
        else:
            report = dry_run(options, state, settings)
    except InputError as error:
        print(f"error: {error}", file=err)
        return 2
    print(rendered(report, options.output, out, env), file=out)
    return report.exit_code


def main() -> None:
    run_and_exit(lambda: run(sys.argv[1:]))

