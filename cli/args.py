"""The seed's flags (`--plan=`, `--dry-run`, `--execute`, `--pr=`) and environment, parsed into one dataclass."""

import argparse
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from core.conventions import DEFAULT_PLAN
from core.errors import InputError
from core.k8s import MAX_INT32, decimal_integer, shown


@dataclass(frozen=True)
class Options:
    flow: str
    plan: Path
    execute: bool
    pr: int | None
    force: bool
    atomic: bool
    require_approval: bool
    from_record: Path | None = None
    seed_fallback: bool = False


class _Parser(argparse.ArgumentParser):
    """argparse that raises InputError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        field, separator, rest = message.partition(": ")
        if field.startswith("argument ") and separator:
            raise InputError("arguments", field.removeprefix("argument ").split("/")[0], rest)
        if field == "unrecognized arguments":
            known = ", ".join(option for action in self._actions for option in action.option_strings)
            raise InputError("arguments", rest.split()[0], f"unknown flag (known: {known})")
        raise InputError("arguments", "arguments", message)


def _pr_number(value: str, where: str) -> int:
    """A pull request number: ASCII digits only (no Unicode digits such as fullwidth ones), 1 to 2**31-1."""
    number = decimal_integer(value, 1, MAX_INT32)
    if number is None:
        raise InputError("arguments", where, f"{shown(value)} is not a pull request number")
    return number


def parse(flow: str, argv: Sequence[str], env: Mapping[str, str] = os.environ) -> Options:
    parser = _Parser(prog=f"infra-{flow}", allow_abbrev=False,
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
                            help="run the seed's rollback even though infra-apply stamped the objects")
    else:
        parser.add_argument("--atomic", action="store_true", help="roll back applied steps if a later one fails")
    parsed = parser.parse_args(list(argv))
    pr_text = parsed.pr if parsed.pr is not None else env.get("PRNUM") or None
    where = "--pr" if parsed.pr is not None else "PRNUM"
    from_record = getattr(parsed, "from_record", None)
    return Options(
        flow=flow,
        plan=Path(parsed.plan),
        execute=parsed.execute,
        pr=_pr_number(pr_text, where) if pr_text is not None else None,
        force=getattr(parsed, "force", False),
        atomic=getattr(parsed, "atomic", False),
        require_approval=parsed.require_approval,
        from_record=_record_file(from_record, Path(parsed.plan)) if from_record is not None else None,
        seed_fallback=getattr(parsed, "seed_fallback", False),
    )


def _record_file(value: str, plan: Path) -> Path:
    """--from-record: an existing, readable apply record of this very plan file (its digest matches)."""
    from core.lifecycle.rollback import record_from_file

    path = Path(value)
    if not path.is_file():
        raise InputError("arguments", "--from-record", f"{shown(value)} is not an existing file")
    try:
        digest = hashlib.sha256(plan.read_bytes()).hexdigest()
    except OSError:
        return path  # the plan itself is unreadable: loading it reports that
    record_from_file(path, digest)
    return path
