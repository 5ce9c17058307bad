"""Reading the plan: pure and fast, so no retries."""

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.plan import load_plan as read_plan


@task(cache_policy=NO_CACHE)
def load_plan(path: str) -> Plan:
    """Validate the plan file; bad input fails the run before anything else happens."""
    return read_plan(Path(path))
