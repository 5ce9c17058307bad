"""The flows in preview, in-process on the session's Prefect server: same steps as the CLI, plus artifacts."""

import asyncio
from pathlib import Path

import pytest

from core.conventions import Flow, artifact_key
from core.report import RunReport

EXAMPLE = "ops/plans/infra-scale/prod/plan.yaml"
REPO = Path(__file__).resolve().parents[2]


async def read_artifact(key: str, flow_run_id: object) -> object:
    """The artifact `key` that the given flow run created (other runs share the key: it is per target)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert found, f"no artifact {key} from flow run {flow_run_id}"
    return found[0].data


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("KUBECTL", "false")  # a preview must not need a cluster: the record lookup fails fast


def test_rollback_flow_preview_matches_the_cli_and_records_a_table(prefect_api: str, in_repo: None) -> None:
    from cli.args import parse
    from cli.main import preview
    from core.plan import load_plan
    from flows.rollback import infra_rollback

    state = infra_rollback(plan=EXAMPLE, return_state=True)
    report = state.result()

    assert isinstance(report, RunReport)
    assert report.final == "succeeded" and report.document is not None
    assert report.document["executed"] is False
    cli = preview(parse("rollback", [f"--plan={EXAMPLE}"], {}), load_plan(Path(EXAMPLE)))
    assert [r["command"] for r in report.document["results"]] == [r["command"] for r in cli.document["results"]]
    example = load_plan(Path(EXAMPLE))
    key = artifact_key(Flow.ROLLBACK, example.target or example.namespace)
    table = asyncio.run(read_artifact(key, state.state_details.flow_run_id))
    assert isinstance(table, str) and "kubectl -n assistant apply -f previous-hpa.yaml" in table
    assert "previewed" in table


def test_apply_flow_preview_reports_the_gate_as_not_required(prefect_api: str, in_repo: None) -> None:
    from flows.apply import infra_apply

    report = infra_apply(plan=EXAMPLE)

    assert isinstance(report, RunReport)
    assert "note: label check not required in preview" in report.lines
    assert report.document is not None
    assert [r["status"] for r in report.document["results"]] == ["previewed"] * 3


def test_flow_execute_without_pr_refuses(prefect_api: str, in_repo: None) -> None:
    from flows.apply import infra_apply

    report = infra_apply(plan=EXAMPLE, execute=True, return_state=True).result(raise_on_failure=False)

    assert isinstance(report, RunReport)
    assert report.final == "skipped"
    assert report.lines[-1] == "Refusing to execute: --execute needs --pr=<number> (or PRNUM)."
