"""Per-run artifacts: a table with one row per step and a markdown summary, for the Prefect UI."""

from collections.abc import Sequence

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.conventions import Flow, artifact_key
from core.report import StepResult, markdown, table_rows
from integrations.secrets import mask


@task(cache_policy=NO_CACHE)
def record_results(flow: Flow, target: str, title: str, namespace: str, results: Sequence[StepResult],
                   executed: bool, notes: Sequence[str]) -> str:
    """Publish the step table and the markdown summary under the target's key; returns the markdown (reused for
    the PR comment)."""
    key = artifact_key(flow, target)
    rows = [{column: mask(value) if isinstance(value, str) else value for column, value in row.items()}
            for row in table_rows(results, namespace)]
    create_table_artifact(table=rows, key=key, description=title)
    text = mask(markdown(title, results, namespace, executed, notes))
    create_markdown_artifact(markdown=text, key=f"{key}-summary", description=title)
    return text


@task(cache_policy=NO_CACHE)
def record_failure(flow: Flow, target: str, title: str, reason: str) -> str:
    """A run the cluster stopped: the reason as the target's summary artifact; returns it (the PR comment)."""
    text = mask(f"### {title}\n\n**failed**: {reason}.\n\nThe label was left on: once the cluster answers, "
                "remove and add it again to retry. The apply record holds every step that ran.")
    create_markdown_artifact(markdown=text, key=f"{artifact_key(flow, target)}-summary", description=title)
    return text


@task(cache_policy=NO_CACHE)
def record_refusal(flow: Flow, target: str, title: str, reason: str) -> None:
    """A run the gate refused: why, as the target's summary artifact (nothing ran, so there is no step table)."""
    text = mask(f"### {title}\n\n**refused**: {reason}\n\nNothing was changed.")
    create_markdown_artifact(markdown=text, key=f"{artifact_key(flow, target)}-summary", description=title)
