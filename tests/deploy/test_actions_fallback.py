"""The GitHub Actions fallback (.github/workflows/infra-label.yml): safe by construction, and its script really
starts the right deployment on a Prefect server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, Deployed
from tests.fixtures.prefect_server import VENV_BIN

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "infra-label.yml"


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def start_step() -> dict[str, Any]:
    (job,) = workflow()["jobs"].values()
    return next(step for step in job["steps"] if "deployment run" in step.get("run", ""))


def test_trigger_is_labeled_pull_request_target_only() -> None:
    data = workflow()
    triggers = data[True] if True in data else data["on"]  # YAML 1.1 reads the key `on` as True
    assert triggers == {"pull_request_target": {"types": ["labeled"]}}
    assert data["permissions"] == {}


def test_never_checks_out_or_runs_the_pr_head() -> None:
    text = WORKFLOW.read_text()
    (job,) = workflow()["jobs"].values()
    assert "execute-plan" in job["if"] and "rollback-plan" in job["if"]
    assert "head.repo.full_name == github.repository" in job["if"]
    for step in job["steps"]:
        assert "uses" not in step, "no actions at all: nothing that could check out or run the head"
        run = step.get("run", "")
        assert "${{" not in run, f"expression interpolated into a script: {run[:200]}"
        assert "git " not in run and "checkout" not in run
    assert "actions/checkout" not in text
    assert not re.search(r"head\.sha|head_sha|refs/pull", text)


def run_script(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runner_temp = tmp_path / "runner"
    (runner_temp / "prefect" / "bin").mkdir(parents=True, exist_ok=True)
    link = runner_temp / "prefect" / "bin" / "prefect"
    if not link.exists():
        link.symlink_to(VENV_BIN / "prefect")
    script = start_step()["run"]
    return subprocess.run(["bash", "-c", script], env={**env, "RUNNER_TEMP": str(runner_temp)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("head_ref", "message"),
    [
        ("feature/x", "nothing to start"),
        ("infra-scale/prod;touch /tmp/pwned", "no valid target"),
        ("infra-scale/$(id)", "no valid target"),
        ("infra-scale/../etc", "no valid target"),
    ],
)
def test_script_refuses_unroutable_branches_without_prefect(head_ref: str, message: str, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "LABEL": "rollback-plan", "PR_NUMBER": "7", "HEAD_REF": head_ref,
           "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # fmt: skip
    done = run_script(env, tmp_path)
    assert message in done.stdout + done.stderr
    assert not Path("/tmp/pwned").exists()


def test_script_refuses_a_bad_pr_number(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "LABEL": "rollback-plan", "PR_NUMBER": "7 -p execute=false",
           "HEAD_REF": "infra-scale/prod", "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # fmt: skip
    done = run_script(env, tmp_path)
    assert done.returncode == 1 and "unexpected pull request number" in done.stdout


def test_script_starts_the_targets_deployment(deployed: Deployed, tmp_path: Path) -> None:
    server = deployed.server
    dep = server.deployment("infra-rollback", "staging")
    known = {r["id"] for r in server.flow_runs(dep["id"])}
    env = {**server.env, "LABEL": "rollback-plan", "PR_NUMBER": "42", "HEAD_REF": "infra-scale/staging/nightly"}
    done = run_script(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    new = [r for r in server.flow_runs(dep["id"]) if r["id"] not in known]
    try:
        assert len(new) == 1
        assert new[0]["parameters"] == {**new[0]["parameters"], "pr": 42, "execute": True,
                                        "plan": "ops/plans/infra-scale/staging/plan.yaml"}  # fmt: skip
        assert "github-actions" in new[0]["tags"]
    finally:  # no worker may pick it up later in the session
        for run in new:
            server.api("DELETE", f"/flow_runs/{run['id']}")
