"""Prefect or GitHub going away mid-run (issue 13, item 6): the cluster work finishes, the lock is released at
once, the record in the cluster is complete, the outcome is printed, and what could not be published is a
`note:`. No call waits past its bound, so the CLI exits promptly."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.conventions import lock_limit_name
from core.gate import GateRequirement
from core.plan import load_plan
from core.record import ApplyRecord
from core.retry import RetryPolicy
from core.vocabulary import RecordStatus, StepStatus
from integrations.github import GitHubSettings, audit_marker
from integrations.kubectl import Kubectl
from integrations.pull_request import report_execution
from integrations.records import read_cluster
from tests.execution.conftest import NAMESPACE, PLAN_PATH, REPO, World
from tests.fixtures.github import GitHubServer
from tests.fixtures.prefect_server import PREFECT, base_env, free_port, stop_process, wait_http

EXIT_BOUND_S = 60
LEASE = "infra-orchestrator-lock"


@pytest.fixture
def doomed_prefect(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    """A Prefect server of this test's own (SQLite), with the target's concurrency limit, to be killed."""
    home, port = tmp_path / "doomed-prefect", free_port()
    home.mkdir()
    env = {**base_env(), "PREFECT_HOME": str(home / "server"), "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "PREFECT_SERVER_API_PORT": str(port), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              cwd=home, stdout=(home / "server.log").open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_http(f"{api}/health", 180, server, home / "server.log")
        httpx.post(f"{api}/v2/concurrency_limits/", json={"name": lock_limit_name("sandbox", NAMESPACE), "limit": 1},
                   timeout=30).raise_for_status()
        yield server, {"PREFECT_API_URL": api, "PREFECT_HOME": str(home / "client")}
    finally:
        stop_process(server)


def start_apply(world: World) -> subprocess.Popen[str]:
    world.label("execute-plan")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "infra-apply"), f"--plan={PLAN_PATH}", "--execute", f"--pr={world.pr}"],
        cwd=world.root, env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def wait_for_first_change(world: World, cli: subprocess.Popen[str]) -> None:
    """Until the first step's write reached the cluster: the gate and its recheck have passed."""
    deadline = time.monotonic() + 180
    while not any(r["method"] == "PATCH" for r in world.kube.requests()):
        assert cli.poll() is None, cli.communicate()
        assert time.monotonic() < deadline, "the apply never started its steps"
        time.sleep(0.05)


def finish(cli: subprocess.Popen[str], since: float) -> tuple[list[str], str, float]:
    """The output lines, all output, and the seconds from `since` to the exit. Asserts that none of our code
    crashed: Prefect's own log lines on stderr may carry tracebacks of its failed calls to a dead server, but no
    traceback passes through this project's code, and stdout has none."""
    try:
        out, err = cli.communicate(timeout=EXIT_BOUND_S + 60)
    except subprocess.TimeoutExpired:
        os.killpg(cli.pid, signal.SIGKILL)
        out, err = cli.communicate()
    took = time.monotonic() - since
    ours = [frame for frame in re.findall(r'File "([^"]+)"', err) if "site-packages" not in frame
            and "/lib/python" not in frame]
    assert "Traceback" not in out and not ours, out + err[-5000:]
    return out.strip().splitlines(), out + err, took


def cluster_record(world: World, monkeypatch: pytest.MonkeyPatch) -> ApplyRecord | None:
    monkeypatch.chdir(world.root)  # the record's name comes from the plan's path in the repository
    return read_cluster(Kubectl(env=world.kube.env), load_plan(Path(PLAN_PATH)))


def assert_applied_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step done and recorded, the lock free, and no write sent twice."""
    assert world.replicas("web") == 4 and world.resources("api")["limits"] == {"cpu": "600m"}
    assert (world.hpa("web") or {}).get("spec", {}).get("minReplicas") == 3
    record = cluster_record(world, monkeypatch)
    assert record is not None and record.status == RecordStatus.SUCCEEDED
    assert [step.status for step in record.steps] == [StepStatus.SUCCEEDED] * 3
    lease = world.kube.get("Lease", NAMESPACE, LEASE)
    assert lease is None, "the lock is released (a free lock is no Lease), not left to expire"
    landed = [(r["method"], r["path"].rsplit("/", 2)[-2:]) for r in world.kube.requests()
              if r["method"] in ("PATCH", "POST", "PUT") and 200 <= r["status"] < 300]
    # a preconditioned scale (--current-replicas) is kubectl's GET, then a PUT of the scale
    assert landed.count(("PUT", ["web", "scale"])) == 1, f"the scale was not sent exactly once: {landed}"
    assert landed.count(("POST", [NAMESPACE, "horizontalpodautoscalers"])) == 1, f"the HPA: {landed}"


def test_prefect_killed_mid_apply(world: World, doomed_prefect: tuple[subprocess.Popen[bytes], dict[str, str]],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server, prefect_env = doomed_prefect
    world.env.update(prefect_env)
    world.kube.faults.add(method="PATCH", latency_s=1.5)  # the steps take a few seconds
    cli = start_apply(world)
    wait_for_first_change(world, cli)
    os.killpg(server.pid, signal.SIGKILL)
    killed = time.monotonic()

    lines, output, took = finish(cli, killed)

    assert took < EXIT_BOUND_S, f"exited {took:.0f}s after Prefect died:\n{output[-3000:]}"
    assert cli.returncode == 0, output[-3000:]
    assert lines[-1] == "succeeded"
    notes = [line for line in lines if line.startswith("note: ")]
    assert any("the Prefect server stopped answering" in note for note in notes), lines
    assert not any("ended in an error" in note for note in notes), notes
    assert_applied_once(world, monkeypatch)
    assert "execute-plan" not in world.github.labels_of(REPO, world.pr), "GitHub still answered: label removed"
    assert len([c for c in world.github.issue_comments(REPO, world.pr) if "infra-orchestrator:apply" in c.body]) == 1


def test_github_down_after_the_gate(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.kube.faults.add(method="PATCH", latency_s=0.5)
    cli = start_apply(world)
    wait_for_first_change(world, cli)
    started = time.monotonic()
    unavailable = world.github.inject(status=503, times=10**6)

    lines, output, took = finish(cli, started)

    assert took < EXIT_BOUND_S, f"exited {took:.0f}s after GitHub went down:\n{output[-3000:]}"
    assert cli.returncode == 0, output[-3000:]
    assert lines[-1] == "succeeded"
    notes = [line for line in lines if line.startswith("note: could not ")]
    assert len(notes) == 2, lines
    assert "write the audit comment" in notes[0]
    assert "set infra/apply on" in notes[1], "the commit status is retried and reported like the PR update"
    assert all("after 3 attempts" in note for note in notes), notes
    assert unavailable.hits >= 6, "each part was tried on the whole schedule"
    assert_applied_once(world, monkeypatch)
    world.github.clear_faults()
    assert "execute-plan" not in world.github.labels_of(REPO, world.pr), "claimed before the first change"
    assert world.github.issue_comments(REPO, world.pr) == []


FAST = RetryPolicy((0.01, 0.01))


def requirement_for(github_server: GitHubServer) -> tuple[GitHubSettings, GateRequirement]:
    github_server.create_repo(REPO, files={"README.md": "# infra\n"})
    github_server.add_collaborator(REPO, "alice", "admin")
    pr = github_server.open_pr(REPO, head="infra-scale/prod", author="alice", files={PLAN_PATH: "actions: []\n"})
    github_server.add_label(REPO, pr, "execute-plan", "alice")
    settings = GitHubSettings.from_env(github_server.env("alice", REPO))
    return settings, GateRequirement(flow="apply", pr=pr, plan_path=PLAN_PATH)


def test_a_comment_that_fails_transiently_is_retried_and_written_once(github_server: GitHubServer) -> None:
    settings, requirement = requirement_for(github_server)
    listing = github_server.inject("GET", r"/issues/\d+/comments$", 503, times=5)  # PyGithub retries 3 times
    github_server.inject("POST", r"/issues/\d+/comments$", 502, store_then_fail=True)

    warnings = report_execution(settings, requirement, "applied", policy=FAST)

    assert warnings == [] and listing.hits == 5
    comments = [c.body.splitlines() for c in github_server.issue_comments(REPO, requirement.pr)]
    assert len(comments) == 1, "stored despite the 502, so not posted again"
    assert comments[0][0] == audit_marker(requirement) and comments[0][2:] == ["applied"]


def test_a_refused_update_is_not_retried(github_server: GitHubServer) -> None:
    settings, requirement = requirement_for(github_server)
    forbidden = github_server.inject("POST", r"/issues/\d+/comments$", 403, times=10)

    warnings = report_execution(settings, requirement, "applied", policy=FAST)

    assert forbidden.hits == 1
    assert len(warnings) == 1
    assert warnings[0].startswith(f"could not write the audit comment on PR #{requirement.pr}: ")
    assert "attempts" not in warnings[0]
