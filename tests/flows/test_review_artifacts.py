"""infra-plan's review publishes its artifacts through tasks.artifacts.publish, as every flow does: when the
Prefect API fails, the review goes on and says which artifacts are missing, and no further call is tried."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from core.plan import load_plan
from core.report import RunReport

PLAN = Path(__file__).resolve().parents[2] / "ops/plans/infra-scale/prod/plan.yaml"


@pytest.mark.parametrize("failed", ["report", "fail"])
def test_the_review_goes_on_with_a_note_when_the_prefect_api_fails(prefect_api: str, monkeypatch: pytest.MonkeyPatch,
                                                                   failed: str) -> None:
    from flows.decorator import flow
    from tasks.review import TaskPlanReporter

    created: list[dict[str, Any]] = []

    def refused(**fields: Any) -> None:
        created.append(fields)
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr("tasks.review.create_table_artifact", refused)
    monkeypatch.setattr("tasks.review.create_markdown_artifact", refused)
    plan = load_plan(PLAN)

    @flow()
    def review() -> RunReport:
        reporter = TaskPlanReporter()
        return reporter.report(plan, [], []) if failed == "report" else reporter.fail(plan, "the cluster is gone")

    report = review()

    notes = [line for line in report.lines if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].endswith(
        "were not published: the Prefect API failed (ConnectError: connection refused)"), report.lines
    assert len(created) == 1, "once a call failed, no further one is tried"
