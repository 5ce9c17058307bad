"""Per-run artifacts: a table with one row per step and a markdown summary, for the Prefect UI."""

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.report import StepResult, markdown, table_rows


def artifact_key(flow: str, plan: Plan) -> str:
    """A stable key per flow and target, so the UI shows each target's history (keys allow [a-z0-9-])."""
    target = plan.target or plan.namespace
    return re.sub(r"[^a-z0-9-]+", "-", f"infra-{flow}-{target}".lower()).strip("-")


@task(cache_policy=NO_CACHE)
def record_results(flow: str, plan: Plan, results: list[StepResult], executed: bool, notes: list[str]) -> str:
    """Publish the step table and the markdown summary; returns the markdown (reused for the PR comment)."""
    key = artifact_key(flow, plan)
    title = f"infra-{flow}: {plan.path}"
    create_table_artifact(table=table_rows(results, plan.namespace), key=key, description=title)
    text = markdown(title, results, plan.namespace, executed, notes)
    create_markdown_artifact(markdown=text, key=f"{key}-summary", description=title)
    return text
