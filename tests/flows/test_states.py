"""What the Prefect UI shows of a run, read back from the session's real Prefect server: the final state's name
and message (`Previewed`, `Refused` (cancelled: not a success), `Failed`), the run's name, its `pr-N` tag,
and the refusal's artifact."""

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from core.conventions import Flow, artifact_key
from core.report import RunReport, failure
from core.vocabulary import Outcome
from tests.flows.test_preview_flows import EXAMPLE, REPO, read_artifact


def server_run(flow_run_id: UUID | None) -> Any:
    """The flow run as the server has it (not the in-process copy)."""
    from prefect.client.orchestration import get_client

    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


@pytest.fixture
def without_github(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the repository, with no cluster and no GitHub settings: the gate refuses without asking anyone."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("KUBECTL", "false")
    for name in ("GH_OWNER", "GH_REPO", "GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_TOKEN_BLOCK"):
        monkeypatch.delenv(name, raising=False)


def test_a_preview_ends_in_previewed_with_a_named_run(prefect_api: str, without_github: None) -> None:
    from flows.apply import infra_apply
    from flows.rollback import infra_rollback

    state = infra_apply(plan=EXAMPLE, return_state=True)

    run = server_run(state.state_details.flow_run_id)
    assert (run.state.type.value, run.state.name) == ("COMPLETED", "Previewed")
    assert run.state.message == "3 steps previewed; nothing changed"
    assert run.name == "apply prod preview"
    report = state.result()
    assert isinstance(report, RunReport) and report.final == "succeeded", "callers still get the report"
    rollback = server_run(infra_rollback(plan=EXAMPLE, return_state=True).state_details.flow_run_id)
    assert (rollback.name, rollback.state.name) == ("rollback prod preview", "Previewed")


def test_a_refusal_ends_in_refused_with_its_reason_tag_and_artifact(prefect_api: str, without_github: None) -> None:
    from flows.apply import infra_apply

    state = infra_apply(plan=EXAMPLE, pr=42, execute=True, return_state=True)

    run = server_run(state.state_details.flow_run_id)
    assert (run.state.type.value, run.state.name) == ("CANCELLED", "Refused"), "a refusal is not a success"
    assert run.state.message.startswith("Refusing to execute: ") and "GH_OWNER" in run.state.message
    assert run.name == "apply prod PR#42"
    assert "pr-42" in run.tags
    artifact = summary_artifact(Flow.APPLY, run.id)
    assert "**refused**" in artifact and run.state.message in artifact
    report = state.result(raise_on_failure=False)  # a cancelled state raises unless asked not to, as a failed one
    assert isinstance(report, RunReport) and report.final == "skipped"


def summary_artifact(flow: Flow, flow_run_id: UUID) -> str:
    data = asyncio.run(read_artifact(f"{artifact_key(flow, 'prod')}-summary", flow_run_id))
    assert isinstance(data, str)
    return data


def test_a_failed_report_stays_failed_and_an_executed_one_stays_completed() -> None:
    from prefect.client.schemas.objects import State

    from flows.shared import flow_result

    failed = flow_result(Flow.APPLY, EXAMPLE, failure("the cluster could not be reached (timeout)"))
    assert isinstance(failed, State) and failed.is_failed()
    executed = RunReport(("note: done",), {"ok": True, "executed": True, "namespace": "a", "results": []},
                         Outcome.SUCCEEDED)
    assert flow_result(Flow.APPLY, EXAMPLE, executed) is executed, "an executed success keeps Prefect's Completed"


def test_a_run_name_survives_a_plan_that_cannot_be_read(tmp_path: Path) -> None:
    from flows.shared import plan_target

    assert plan_target(str(tmp_path / "staging" / "plan.yaml")) == "staging"
    assert plan_target(str(REPO / EXAMPLE)) == "prod"
