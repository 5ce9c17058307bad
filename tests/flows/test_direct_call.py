"""A flow called directly from Python, as a user does on Prefect's temporary server (no PREFECT_API_URL): a refused
run returns its report and prints no traceback, while the server still shows the run Cancelled, named Refused."""

import os
import subprocess
import sys
from pathlib import Path

from tests.flows.test_preview_flows import EXAMPLE, REPO

SCRIPT = f"""
from prefect.client.orchestration import get_client

from flows.apply import infra_apply
from flows.rollback import infra_rollback

for flow in (infra_apply, infra_rollback):
    report = flow(plan={EXAMPLE!r}, pr=42, execute=True, repository="someone/else")
    print("final:", type(report).__name__, report.final)
    print("last:", report.lines[-1])
with get_client(sync_client=True) as client:
    for run in sorted(client.read_flow_runs(), key=lambda run: run.name):
        print("state:", run.name, run.state.type.value, run.state.name)
"""


def test_a_refused_direct_call_returns_its_report_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "prefect").mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "KUBECTL": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}  # a loaded machine starts it slowly  # fmt: skip

    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output and "TypeError" not in output, output
    refusal = ("last: Refusing to execute: repository someone/else is not served by this worker (serves: none "
               "configured; set GH_OWNER/GH_REPO or INFRA_REPOSITORIES).")
    assert [line for line in done.stdout.splitlines() if line.startswith(("final:", "last:"))] == [
        "final: RunReport skipped", refusal, "final: RunReport skipped", refusal]
    assert [line for line in done.stdout.splitlines() if line.startswith("state:")] == [
        "state: apply prod PR#42 CANCELLED Refused", "state: rollback prod PR#42 CANCELLED Refused"]
