"""Reading the plan: pure and fast, so no retries.

A run reads its plan twice within a second: for its name (flows.shared.run_name), then in its load_plan task. The
second read reuses the first one's parse while the plan and every file it reads are the same, byte for byte: a
3,000-action plan took 0.4-0.5 s to parse. Either way the Plan returned carries the bytes it was parsed from,
which are what the gate compares with the PR.
"""

import threading
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.plan import load_plan as read_plan

_parsed: dict[Path, Plan] = {}
_parsing = threading.Lock()


def _unchanged(plan: Plan) -> bool:
    """Whether the plan and every file it read still hold, on disk, the bytes it was parsed from."""
    read = {plan.path: plan.data, **{plan.directory / path: data for path, data in plan.files.items()}}
    try:
        return all(path.is_file() and path.read_bytes() == data for path, data in read.items())
    except OSError:
        return False


def parsed_plan(path: Path) -> Plan:
    """`core.plan.load_plan(path)`, parsed again only when the plan or a file it reads changed since."""
    key = path.resolve()
    with _parsing:
        known = _parsed.get(key)
        if known is not None and _unchanged(known):
            return known
        plan = read_plan(path)
        _parsed[key] = plan
        return plan


@task(cache_policy=NO_CACHE)
def load_plan(path: str) -> Plan:
    """Validate the plan file; bad input fails the run before anything else happens."""
    return parsed_plan(Path(path))
