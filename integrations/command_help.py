"""What every console script's `--help` ends with (examples, environment variables, exit codes) and `--version`.

Only the standard library: the sandbox servers and the webhook bridge use it too, and a preview must stay fast.
"""

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from core.conventions import Env

PACKAGE = "infra-orchestrator"

Entries = tuple[tuple[str, str], ...]


def package_version() -> str:
    """The installed distribution's version (pyproject.toml); a bare checkout on sys.path has none."""
    from importlib.metadata import PackageNotFoundError, version  # 50 ms of imports: only when asked

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown (not installed)"


class VersionAction(argparse.Action):
    """`--version`: looks the version up when the flag is given, not on every start (a preview must be fast)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the installed version and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> NoReturn:
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def flag_error(parser: argparse.ArgumentParser, message: str) -> tuple[str, str]:
    """argparse's error `message` as (field, reason): the flag it is about, and for an unknown flag the closest
    known ones ("did you mean --plan?", difflib over the parser's own options)."""
    field, separator, rest = message.partition(": ")
    if field.startswith("argument ") and separator:
        return field.removeprefix("argument ").split("/")[0], rest
    if field == "unrecognized arguments":
        flag = rest.split()[0]
        known = [option for action in parser._actions for option in action.option_strings]
        close = difflib.get_close_matches(flag.split("=", 1)[0], known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        return flag, f"unknown flag ({hint})"
    if field == "the following arguments are required" and separator:
        return rest.split(", ")[0], "is required"
    return "arguments", message


class CommandParser(argparse.ArgumentParser):
    """argparse with the project's one error format: `error: arguments: <flag>: <reason>` on stderr, exit 2
    (instead of argparse's usage and `prog: error:` lines)."""

    def error(self, message: str) -> NoReturn:
        field, reason = flag_error(self, message)
        print(f"error: arguments: {field}: {reason}", file=sys.stderr)
        sys.exit(2)


@dataclass(frozen=True)
class Usage:
    examples: tuple[str, ...]
    environment: Entries
    exit_codes: Entries

    def epilog(self) -> str:
        width = max(len(name) for name, _ in self.environment) if self.environment else 0
        sections = ["examples:", *(f"  {example}" for example in self.examples)]
        if self.environment:
            sections += ["", "environment:", *(f"  {name:<{width}}  {text}" for name, text in self.environment)]
        sections += ["", "exit codes:", *(f"  {code}  {text}" for code, text in self.exit_codes)]
        return "\n".join(sections)


def documented(parser: argparse.ArgumentParser, usage: Usage) -> argparse.ArgumentParser:
    """`parser` with the usage as its epilog (kept as written) and a `--version` flag."""
    parser.epilog = usage.epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--version", action=VersionAction)
    return parser


KUBE_ENVIRONMENT: Entries = (
    (Env.KUBECONFIG, "the cluster (a plan may also name a context)"),
    (Env.KUBECTL, "the kubectl binary (default kubectl)"),
    (Env.KUBECTL_TIMEOUT, "seconds before a kubectl call is killed and retried (default 60)"),
)
GITHUB_ENVIRONMENT: Entries = (
    ("GH_OWNER, GH_REPO", "the repository carrying the plan's PR (or GITHUB_REPOSITORY=owner/name)"),
    ("GITHUB_TOKEN", "a token that reads PRs and writes comments and labels"),
    ("GITHUB_TOKEN_BLOCK", "a Prefect Secret block holding the token, instead of GITHUB_TOKEN"),
    ("GITHUB_API_URL", "GitHub Enterprise's API (default https://api.github.com)"),
)
PREFECT_ENVIRONMENT: Entries = (
    ("PREFECT_API_URL", "the Prefect server --execute records its run on (unset: a temporary one, ~10 s)"),
)
PREFECT_PR_ENVIRONMENT: Entries = (
    ("PREFECT_API_URL", "the Prefect server --pr records its run on (unset: a temporary one, ~10 s)"),
)
EXPIRY_ENVIRONMENT: Entries = (
    (Env.MAX_EXPIRY, "how far ahead a plan's `expires:` may lie (a duration such as 720h; default 30d). A plan "
                         "with `expires:` (an RFC 3339 time with a timezone, or 72h/30m/2s after the apply) is "
                         "rolled back by itself then, by a run of the target's infra-rollback deployment"),
)
TERMINAL_ENVIRONMENT: Entries = (
    ("NO_COLOR", "set: no colour even on a terminal"),
)
