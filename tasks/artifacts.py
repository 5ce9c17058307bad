"""Per-run artifacts: a table with one row per step and a markdown summary, for the Prefect UI.

Artifacts are the one part of a run's report that only the Prefect server keeps. When it stops answering, the
run goes on (the outcome is printed and the record is in the cluster): the artifacts that could not be
published become a note, and once one call failed no further one is tried (each would wait out the client's
retries against a server that is gone).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.conventions import Flow, artifact_key
from core.report import Provenance, StepResult, markdown, table_rows
from integrations.secrets import mask
from tasks.kept import kept


@dataclass(frozen=True)
class Summary:
    markdown: str
    """The run's summary (reused for the PR comment)."""
    note: str | None = None
    """Why the artifacts are missing from the Prefect UI, when they are."""


def publish(key: str, *creates: Callable[[], object]) -> str | None:
    """Run the artifact calls in order; returns a note when the Prefect API failed (then the rest are skipped)."""
    run = kept()
    for create in creates:
        if run.prefect_error is None:
            try:
                create()
                continue
            except (httpx.HTTPError, OSError) as error:
                run.prefect_error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return f"the run's artifacts ({key}) were not published: the Prefect API failed ({run.prefect_error})"
    return None


@task(cache_policy=NO_CACHE)
def record_results(flow: Flow, target: str, title: str, namespace: str, results: Sequence[StepResult],
                   executed: bool, notes: Sequence[str], links: Sequence[tuple[str, str]] = (),
                   provenance: Provenance | None = None) -> Summary:
    """Publish the step table and the markdown summary (with `links`: the PR; and for an execution, who approved
    it and where it is recorded, also in the table's description) under the target's key."""
    key = artifact_key(flow, target)
    rows = [{column: mask(value) if isinstance(value, str) else value for column, value in row.items()}
            for row in table_rows(results, namespace)]
    text = mask(markdown(title, results, namespace, executed, notes, links, provenance, flow))
    described = mask(f"{title}: {provenance.text()}") if provenance is not None else title
    note = publish(key, lambda: create_table_artifact(table=rows, key=key, description=described),
                   lambda: create_markdown_artifact(markdown=text, key=f"{key}-summary", description=title))
    return Summary(text, note)


@task(cache_policy=NO_CACHE)
def record_failure(flow: Flow, target: str, title: str, reason: str) -> Summary:
    """A run stopped by the cluster or before its first change: the reason as the target's summary artifact."""
    text = mask(f"### {title}\n\n**failed**: {reason}.\n\nThe label was left on: once the cause is fixed, "
                "remove and add it again to retry. The apply record holds every step that ran.")
    key = f"{artifact_key(flow, target)}-summary"
    return Summary(text, publish(key, lambda: create_markdown_artifact(markdown=text, key=key, description=title)))


@task(cache_policy=NO_CACHE)
def record_refusal(flow: Flow, target: str, title: str, reason: str) -> Summary:
    """A run the gate refused: why, as the target's summary artifact (nothing ran, so there is no step table)."""
    text = mask(f"### {title}\n\n**refused**: {reason}\n\nNothing was changed.")
    key = f"{artifact_key(flow, target)}-summary"
    return Summary(text, publish(key, lambda: create_markdown_artifact(markdown=text, key=key, description=title)))
