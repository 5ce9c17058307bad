"""A refused run as the Prefect UI shows it, in headless Chromium: its page names the `Refused` state and the
refusal sentence, and does not show it as Completed (a refusal is not a success)."""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import chromium_binary
from tests.fixtures.github import GitHubServer
from tests.fixtures.prefect_server import PrefectServer

PLAN_PATH = "ops/plans/infra-scale/prod/plan.yaml"
PLAN = "namespace: shop\ntarget: prod\nactions:\n  - {type: scale_workload, name: web, replicas: 4}\n"


def visible_text(dom: str) -> str:
    dom = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_a_refused_run_is_not_shown_as_a_success(prefect_server: PrefectServer, github_server: GitHubServer,
                                                 tmp_path: Path) -> None:
    chromium = chromium_binary()
    if chromium is None:
        pytest.fail("chromium is not installed (deployments/ci_services.sh installs it)")
    github_server.create_repo("acme/infra", files={"README.md": "# infra\n"})
    github_server.add_collaborator("acme/infra", "alice", "admin")
    pr = github_server.open_pr("acme/infra", head="infra-scale/prod", author="alice", files={PLAN_PATH: PLAN})
    (tmp_path / PLAN_PATH).parent.mkdir(parents=True)
    (tmp_path / PLAN_PATH).write_text(PLAN)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": "/dev/null", **prefect_server.env,
           **github_server.env("alice", "acme/infra")}

    done = subprocess.run([str(Path(sys.executable).parent / "infra-apply"), "--execute", f"--pr={pr}",
                           f"--plan={PLAN_PATH}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)  # no label on the PR: the gate refuses

    sentence = "Refusing to execute: PR missing label 'execute-plan'."
    assert done.stdout.splitlines()[-2:] == [sentence, "skipped"], done.stdout + done.stderr
    run = next(run for run in prefect_server.flow_runs() if run["name"] == f"apply prod PR#{pr}")
    assert (run["state_type"], run["state_name"]) == ("CANCELLED", "Refused")
    url = f"{prefect_server.ui_url}/runs/flow-run/{run['id']}"
    assert httpx.get(url, headers={"Accept": "text/html"}, timeout=10).status_code == 200
    shot = tmp_path / "refused.png"
    page = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--window-size=1280,1000", "--virtual-time-budget=15000",
                           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    text = visible_text(page.stdout)

    header = text.split(" Logs ", 1)[0]  # the run's title and state badge, above its tabs (the task runs' own
    assert run["name"] in header, text[:2000]  # log lines below say `Completed`)
    assert "Refused" in header and "Completed" not in header, header
    assert shot.exists() and shot.stat().st_size > 20_000
