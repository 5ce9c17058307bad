"""Reading the plan: pure and fast, so no retries.

A run reads its plan twice within a second: for its name (flows.shared.run_name), then in its load_plan task. The
second read reuses the first one's parse while the plan and every file it reads are the same, byte for byte: a
3,000-action plan took 0.4-0.5 s to parse.
"""

import threading
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.gate import files_read_by
from core.plan import Plan
from core.plan import load_plan as read_plan

_parsed: dict[Path, tuple[dict[Path, bytes | None], Plan]] = {}
_parsing = threading.Lock()


def _contents(paths: list[Path]) -> dict[Path, bytes | None]:
    return {path: path.read_bytes() if path.is_file() else None for path in paths}


def parsed_plan(path: Path) -> Plan:
    """`core.plan.load_plan(path)`, parsed again only when the plan or a file it reads changed since."""
    key = path.resolve()
    with _parsing:
        known = _parsed.get(key)
        if known is not None and _contents(list(known[0])) == known[0]:
            return known[1]
        before = _contents([key])  # before the parse: a plan changed during it is parsed again next time
        plan = read_plan(path)
        _parsed[key] = ({**before, **_contents(list(files_read_by(plan, plan.repository_path).values()))}, plan)
        return plan


@task(cache_policy=NO_CACHE)
def load_plan(path: str) -> Plan:
    """Validate the plan file; bad input fails the run before anything else happens."""
    return parsed_plan(Path(path))
