"""Reading the plan and turning it into steps: pure and fast, so no retries."""

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.plan import load_plan as read_plan
from core.record import ApplyRecord
from core.reversal import plan_steps
from core.steps import Step


@task(cache_policy=NO_CACHE)
def load_plan(path: str) -> Plan:
    """Validate the plan file; bad input fails the run before anything else happens."""
    return read_plan(Path(path))


@task(cache_policy=NO_CACHE)
def build_steps(plan: Plan, flow: str, record: ApplyRecord | None = None) -> tuple[list[Step], list[str]]:
    """Forward steps for apply; for rollback, the reversal of the record (or the seed's fallback)."""
    return plan_steps(plan, flow, record)
