"""The preview: every step as `preview: kubectl -n <ns> <args>`, logged, nothing run."""

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.report import StepResult, preview_lines
from core.steps import Step


@task(cache_policy=NO_CACHE)
def run_preview(plan: Plan, steps: list[Step], notes: list[str]) -> list[StepResult]:
    logger = get_run_logger()
    for line in [*preview_lines(steps, plan.namespace), *(f"note: {note}" for note in notes)]:
        logger.info(line)
    return [StepResult(step, "previewed") for step in steps]
