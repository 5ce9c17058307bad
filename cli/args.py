"""The seed's flags (`--plan=`, `--dry-run`, `--execute`, `--pr=`) and environment, parsed into one dataclass."""

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from cli.output import OUTPUT_FORMATS
from core.conventions import DEFAULT_PLAN, DEFAULT_PLANS_DIR, LABELS, PLAN_FILE, RECORD_KEY_FILE, Env, Flow
from core.errors import InputError
from core.k8s import MAX_INT32, decimal_integer, shown
from core.policy import chosen_mode
from core.vocabulary import OutputFormat
from integrations.command_help import (
    EXPIRY_ENVIRONMENT,
    GITHUB_ENVIRONMENT,
    KUBE_ENVIRONMENT,
    PREFECT_ENVIRONMENT,
    TERMINAL_ENVIRONMENT,
    CommandParser,
    Usage,
    documented,
    flag_error,
)


@dataclass(frozen=True)
class Options:
    flow: Flow
    plan: Path
    execute: bool
    pr: int | None
    force: bool
    atomic: bool
    require_approval: bool
    from_record: Path | None = None
    seed_fallback: bool = False
    output: OutputFormat = OutputFormat.TEXT
    require_plan: bool = False


class Parser(CommandParser):
    """The project's parser, raising InputError (the caller prints it and exits 2) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise InputError("arguments", *flag_error(self, message))


def pr_number(value: str, where: str) -> int:
    """A pull request number: ASCII digits only (no Unicode digits such as fullwidth ones), 1 to 2**31-1."""
    number = decimal_integer(value, 1, MAX_INT32)
    if number is None:
        raise InputError("arguments", where, f"{shown(value)} is not a pull request number")
    return number


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default=OutputFormat.TEXT.value,
                        help="text (default: the lines of the Node scripts (v0)) or json (the JSON summary alone on "
                             "stdout)")


EXIT_CODES = (
    ("0", "succeeded, or skipped: the gate refused (`Refusing to execute: ...`) and nothing changed"),
    ("1", "failed: a step failed, or the cluster could not be reached or refused the run, or the lock was lost"),
    ("2", "bad input: a flag, the plan file or the environment (`error: <file>: <field>: ...`); nothing ran"),
)


POLICY_HELP = (Env.POLICY, "warn (default) or block: whether a policy finding (quota, LimitRange, PDB, HPA) "
               "refuses the apply")


def usage(flow: str) -> Usage:
    """--help's examples, environment variables and exit codes for infra-apply / infra-rollback."""
    command, label = f"infra-{flow}", LABELS[flow]
    extra = "--atomic" if flow == "apply" else "--force"
    return Usage(
        examples=(f"{command}    # preview {DEFAULT_PLAN}: nothing changes",
                  f"{command} --plan={DEFAULT_PLANS_DIR}/staging/{PLAN_FILE} -o json",
                  f"{command} --execute --pr=42 {extra}    # once PR #42 carries {label}"),
        environment=(*KUBE_ENVIRONMENT, *GITHUB_ENVIRONMENT,
                     ("PRNUM", "the pull request when --pr is not given"), *PREFECT_ENVIRONMENT,
                     (Env.MAX_PARALLEL_STEPS, "kubectl calls on different workloads at a time (default 4)"),
                     (Env.REPOSITORIES, "further owner/name repositories this worker serves"),
                     (Env.TRUSTED_BOTS, "bot logins whose labels may trigger a run"),
                     (Env.CONTEXTS, "kube contexts a plan may name (default: the kubeconfig's current one)"),
                     (Env.BASE_BRANCHES, "branches a PR may target besides the default branch"),
                     (Env.RECORD_KEY, "the key that signs and verifies apply records (shared by every worker; "
                                          f"unset: ~/.config/{RECORD_KEY_FILE} on this machine)"),
                     (Env.RECORD_KEYS_OLD, "earlier record keys, still accepted for verifying after a rotation"),
                     (Env.RECORD_KEY_BLOCK, "a Prefect Secret block holding the record keys, instead"),
                     *((POLICY_HELP, *EXPIRY_ENVIRONMENT) if flow == "apply" else ()),
                     *TERMINAL_ENVIRONMENT),
        exit_codes=EXIT_CODES,
    )


def require_github(env: Mapping[str, str]) -> None:
    """--execute asks GitHub before anything else: missing settings are bad input, refused before Prefect starts
    (importing it and a temporary server would cost seconds just to say so)."""
    from integrations.github import GitHubSettings

    missing = GitHubSettings.from_env(env).missing()
    fixes = []
    if {"GH_OWNER", "GH_REPO"} & set(missing):
        fixes.append("GH_OWNER and GH_REPO (or GITHUB_REPOSITORY=owner/name)")
    if "GITHUB_TOKEN" in missing:
        fixes.append("GITHUB_TOKEN (or GITHUB_TOKEN_BLOCK, the name of a Prefect Secret block holding it)")
    if missing:
        raise InputError("environment", missing[0], f"is required for --execute: set {' and '.join(fixes)}")


def parse(flow: str, argv: Sequence[str], env: Mapping[str, str] = os.environ) -> Options:
    parser = Parser(prog=f"infra-{flow}", allow_abbrev=False,
                     description=f"Preview (default) or execute the {flow} of a plan.yaml.")
    parser.add_argument("--plan", default=DEFAULT_PLAN, help=f"the plan file (default {DEFAULT_PLAN})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="preview only (the default)")
    mode.add_argument("--execute", action="store_true", help="change the cluster; needs --pr and a passing gate")
    parser.add_argument("--pr", help="the pull request that carries the plan (default: $PRNUM)")
    parser.add_argument("--require-approval", action="store_true",
                        help="also require an approving review of the PR's head by someone with write access")
    if flow == "rollback":
        parser.add_argument("--force", action="store_true", help="reverse steps even where the object drifted")
        parser.add_argument("--from-record", metavar="FILE",
                            help="roll back from this record file (e.g. a saved plan.record.json), not the stored one")
        parser.add_argument("--seed-fallback", action="store_true",
                            help="run the Node scripts' (v0) rollback even though infra-apply stamped the objects")
    else:
        parser.add_argument("--atomic", action="store_true", help="roll back applied steps if a later one fails")
        parser.add_argument("--require-plan", action="store_true",
                            help="refuse unless infra/plan succeeded on the PR's head (infra-plan --pr ran there)")
    add_output(parser)
    documented(parser, usage(flow))  # last: the seed's flags keep their places in `known:` and --help
    parsed = parser.parse_args(list(argv))
    if flow == "apply":
        chosen_mode(None, env)  # a bad $INFRA_POLICY is bad input before anything runs
    pr_text = parsed.pr if parsed.pr is not None else env.get("PRNUM") or None
    where = "--pr" if parsed.pr is not None else "PRNUM"
    from_record = getattr(parsed, "from_record", None)
    return Options(
        flow=Flow(flow),
        plan=Path(parsed.plan),
        execute=parsed.execute,
        pr=pr_number(pr_text, where) if pr_text is not None else None,
        force=getattr(parsed, "force", False),
        atomic=getattr(parsed, "atomic", False),
        require_approval=parsed.require_approval,
        from_record=_record_file(from_record) if from_record is not None else None,
        seed_fallback=getattr(parsed, "seed_fallback", False),
        output=OutputFormat(parsed.output),
        require_plan=getattr(parsed, "require_plan", False),
    )


def _record_file(value: str) -> Path:
    """--from-record: an existing file. Whether it is a record that verifies is checked by the run, which holds
    the record key (integrations.records.read_file)."""
    path = Path(value)
    if not path.is_file():
        raise InputError("arguments", "--from-record", f"{shown(value)} is not an existing file")
    return path
