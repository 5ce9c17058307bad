"""The CLI's own flow runs send no heartbeats unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY asks for them, in the
environment or the Prefect profile (cli/execute.py says why), read back from the events the Prefect server stored
for each run."""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.execution.conftest import World

HEARTBEAT = "prefect.flow-run.heartbeat"
FINAL = "prefect.flow-run.Completed"


def run_id(world: World, flow: str, since: str) -> str:
    """The id of the one `<flow> prod PR#N` run that started after `since`."""
    body = {"flow_runs": {"name": {"any_": [f"{flow} prod PR#{world.pr}"]}, "start_time": {"after_": since}},
            "limit": 5}
    found = httpx.post(f"{world.env['PREFECT_API_URL']}/flow_runs/filter", json=body, timeout=10).json()
    assert len(found) == 1, found
    return str(found[0]["id"])


def stored_events(world: World, flow_run_id: str) -> list[str]:
    """The run's heartbeat and Completed events, once the server has stored its Completed one: the run's events
    leave its process in order, so a heartbeat it sent is stored by then."""
    body: dict[str, Any] = {"filter": {"event": {"name": [HEARTBEAT, FINAL]},
                                       "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}}, "limit": 50}
    deadline = time.monotonic() + 30
    while True:
        events = httpx.post(f"{world.env['PREFECT_API_URL']}/events/filter", json=body, timeout=10).json()["events"]
        names = [event["event"] for event in events]
        if FINAL in names or time.monotonic() > deadline:
            return names
        time.sleep(0.5)


def test_cli_runs_send_heartbeats_only_when_the_environment_or_profile_asks(world: World, tmp_path: Path) -> None:
    since = datetime.now(UTC).isoformat()
    world.label("execute-plan")
    applied = world.cli("apply", "--execute", f"--pr={world.pr}")
    assert applied.stdout.splitlines()[-1] == "succeeded", applied.stdout + applied.stderr

    world.label("rollback-plan")
    rolled = world.cli("rollback", "--execute", f"--pr={world.pr}", PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30")
    assert rolled.stdout.splitlines()[-1] == "succeeded", rolled.stdout + rolled.stderr

    assert stored_events(world, run_id(world, "apply", since)) == [FINAL]
    rollback_events = stored_events(world, run_id(world, "rollback", since))
    assert FINAL in rollback_events and HEARTBEAT in rollback_events, rollback_events

    again = datetime.now(UTC).isoformat()
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "beating"\n\n[profiles.beating]\nPREFECT_FLOWS_HEARTBEAT_FREQUENCY = "30"\n')
    world.label("execute-plan")
    reapplied = world.cli("apply", "--execute", f"--pr={world.pr}", PREFECT_PROFILES_PATH=str(profiles))
    assert reapplied.stdout.splitlines()[-1] == "succeeded", reapplied.stdout + reapplied.stderr
    profile_events = stored_events(world, run_id(world, "apply", again))
    assert FINAL in profile_events and HEARTBEAT in profile_events, profile_events
