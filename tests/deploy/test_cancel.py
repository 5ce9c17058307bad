"""A Prefect cancellation of a deployment run takes the SIGTERM path: the worker's runner sends the flow-run
process group SIGTERM, and the run stops as the CLI does on SIGTERM (integrations/stopping.py): no new step, the
write in flight settled, the record saved, the lock released, `stopped by SIGTERM after N of M steps`.

Real parts: PostgreSQL, a Prefect server, the deployments of prefect.yaml, a process worker, the sandbox cluster
and the GitHub test server.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.plan import load_plan
from core.vocabulary import RecordStatus
from integrations.kubectl import Kubectl
from integrations.records import read_cluster
from tests.deploy.conftest import Deployed
from tests.fixtures.github import GitHubServer
from tests.fixtures.kube import KubeSandbox

REPO = "acme/infra"
PLAN_PATH = "ops/plans/infra-scale/prod/plan.yaml"
PLAN_TEXT = """namespace: shop
target: prod
actions:
  - {type: scale_workload, name: web, replicas: 4}
  - {type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8}
"""
WEB_SCALE = r"/deployments/web/scale$"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
RECORD_KEY = "a record key for the cancellation test, shared with the worker"


def wait_until(condition: Any, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


@pytest.mark.timeout(600)  # includes starting the session's PostgreSQL + Prefect server and deploying
def test_cancelling_a_deployment_run_stops_it_as_sigterm_does(
    deployed: Deployed, prefect_workers: Any, kube_sandbox_factory: Any, github_server: GitHubServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    server = deployed.server
    prod: KubeSandbox = kube_sandbox_factory()
    prod.create_namespace("shop")
    prod.create_deployment("shop", "web", replicas=2)
    people = (("alice", "admin"), ("walt", "write"), ("bot", "write"))
    for login, _ in people:
        github_server.add_user(login)
    github_server.create_repo(REPO, files={"README.md": "# infra\n"})
    for login, role in people:
        github_server.add_collaborator(REPO, login, role)
    number = github_server.open_pr(REPO, head="infra-scale/prod", author="bot", title="infra-scale: prod",
                                   files={PLAN_PATH: PLAN_TEXT})
    plan_file = deployed.checkout / PLAN_PATH
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    plan_file.write_text(PLAN_TEXT)
    # the session's checkout is shared: an earlier test's apply left its record mirror there, signed with its key
    plan_file.with_name("plan.record.json").unlink(missing_ok=True)
    env = {**prod.env, "PATH": server.env["PATH"], **github_server.env("bot", REPO),
           "INFRA_ORCHESTRATOR_DIR": str(deployed.checkout), "INFRA_KUBECTL_TIMEOUT": "60",
           "INFRA_RECORD_KEY": RECORD_KEY}
    worker = prefect_workers("infra-prod", env=env, cwd=deployed.checkout)
    # the scale lands at once and its answer is held for a while (within the runner's 30 s between its SIGTERM
    # and a SIGKILL): the cancellation comes while the write is in flight
    prod.faults.add(method="PUT", path_regex=WEB_SCALE, answer_late_s=15, count=1)
    github_server.add_label(REPO, number, "execute-plan", "walt")
    deployment = server.deployment("infra-apply", "prod")
    run = server.api("POST", f"/deployments/{deployment['id']}/create_flow_run",
                     {"parameters": {"plan": PLAN_PATH, "pr": number, "execute": True, "repository": REPO}})

    wait_until(lambda: prod.count_requests(method="PUT", path_regex=WEB_SCALE) > 0
               or server.api("GET", f"/flow_runs/{run['id']}")["state"]["type"] in TERMINAL,
               "the scale landed", timeout_s=240)
    assert server.api("GET", f"/flow_runs/{run['id']}")["state"]["type"] == "RUNNING", \
        "\n".join([*server.logs(run["id"])[-40:], worker.log()[-4000:]])
    server.api("POST", f"/flow_runs/{run['id']}/set_state",
               {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True})
    wait_until(lambda: server.api("GET", f"/flow_runs/{run['id']}")["state"]["type"] in TERMINAL,
               "the run ended", timeout_s=120)

    logs = server.logs(run["id"])
    ended = server.api("GET", f"/flow_runs/{run['id']}")
    stopped = [line for line in logs if "stopped by SIGTERM after 1 of 2 steps" in line]
    assert stopped, f"{ended['state']}\n" + "\n".join(logs[-30:]) + worker.log()[-3000:]
    assert not any("Crash detected" in line for line in logs), logs[-30:]
    assert ended["state"]["type"] == "CANCELLED", ended["state"]
    assert prod.get("Lease", "shop", "infra-orchestrator-lock") is None, "the lock was released"
    web = prod.get("deployment", "shop", "web")
    assert web is not None and web["spec"]["replicas"] == 4, "the write in flight settled"
    assert prod.get("HorizontalPodAutoscaler", "shop", "web") is None, "no new step after the cancellation"
    monkeypatch.chdir(deployed.checkout)
    monkeypatch.setenv("INFRA_RECORD_KEY", RECORD_KEY)
    record = read_cluster(Kubectl(env=prod.env), load_plan(Path(PLAN_PATH)))
    assert record is not None and record.status == RecordStatus.RUNNING, record
    assert [step.status for step in record.steps] == ["succeeded", "pending"]
