"""End to end, as production runs it: PostgreSQL, a Prefect server, one work pool + worker per target (prod and
staging, each worker next to its own sandbox cluster), the webhook bridge, the GitHub test server.

A signed `labeled` webhook for `execute-plan` applies the plan on prod; one for `rollback-plan` runs the
infra-rollback deployment for prod only, which restores the cluster, publishes the step table and comments on the
PR. A replayed delivery and a bad signature start nothing. A headless Chromium then opens the run in the UI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import BridgeProcess, Deployed, chromium_binary
from tests.fixtures.github import GitHubServer
from tests.fixtures.kube import KubeSandbox

REPO = "acme/infra"
PLAN_PATH = "ops/plans/infra-scale/prod/plan.yaml"
PLAN_TEXT = """namespace: shop
target: prod
actions:
  - type: scale_workload
    name: web
    replicas: 4
    reason: e2e
"""
FLOWS = ("infra-scale", "infra-apply", "infra-rollback")
TARGETS = ("prod", "staging")
SEEN: dict[str, Any] = {}  # what the browser check needs from the end-to-end run


def labeled_payload(gh: GitHubServer, number: int, label: str, sender: str) -> bytes:
    pr = gh.pull(REPO, number)
    payload = {
        "action": "labeled",
        "number": number,
        "label": {"name": label, "color": "ededed", "default": False},
        "pull_request": {
            "number": number,
            "state": "open",
            "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": {"full_name": REPO, "fork": False}},
            "base": {"ref": "main", "repo": {"full_name": REPO}},
        },
        "repository": {"full_name": REPO, "name": "infra", "owner": {"login": "acme"}},
        "sender": {"login": sender, "type": "User"},
    }
    return json.dumps(payload).encode()


def run_ids(deployed: Deployed) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for flow in FLOWS:
        for target in TARGETS:
            dep = deployed.server.deployment(flow, target)
            out[f"{flow}/{target}"] = {r["id"] for r in deployed.server.flow_runs(dep["id"])}
    return out


def wait_run(deployed: Deployed, flow: str, target: str, known: set[str], workers: list[Any]) -> dict[str, Any]:
    dep = deployed.server.deployment(flow, target)
    try:
        return deployed.server.wait_flow_run(dep["id"], timeout=120, known=known)
    except TimeoutError:
        logs = "\n".join(w.log()[-3000:] for w in workers)
        raise AssertionError(f"{flow}/{target} did not finish; worker logs:\n{logs}") from None


def replicas(sandbox: KubeSandbox, name: str = "web") -> int:
    obj = sandbox.get("deployment", "shop", name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def seed_github(gh: GitHubServer) -> int:
    for login in ("alice", "walt", "bot"):
        gh.add_user(login)
    gh.create_repo(REPO, files={"README.md": "# infra\n"})
    gh.add_collaborator(REPO, "alice", "admin")
    gh.add_collaborator(REPO, "walt", "write")
    gh.add_collaborator(REPO, "bot", "write")
    return gh.open_pr(REPO, head="infra-scale/prod", author="bot", title="infra-scale: prod",
                      files={PLAN_PATH: PLAN_TEXT})  # fmt: skip


@pytest.mark.timeout(600)  # includes starting the session's PostgreSQL + Prefect server and deploying
def test_label_webhook_runs_the_right_deployment_end_to_end(
    deployed: Deployed, prefect_workers: Any, webhook_bridge: Any, kube_sandbox_factory: Any,
    github_server: GitHubServer, tmp_path: Path,
) -> None:  # fmt: skip
    server = deployed.server
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"[e2e +{time.monotonic() - t0:6.1f}s] {what}")

    prod: KubeSandbox = kube_sandbox_factory()
    staging: KubeSandbox = kube_sandbox_factory()
    for cluster in (prod, staging):
        cluster.create_namespace("shop")
        cluster.create_deployment("shop", "web", replicas=2)
    number = seed_github(github_server)
    plan_file = deployed.checkout / PLAN_PATH
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    plan_file.write_text(PLAN_TEXT)

    workers = []
    for target, cluster in (("prod", prod), ("staging", staging)):
        env = {
            **cluster.env,
            "PATH": server.env["PATH"],
            **github_server.env("bot", REPO),
            "INFRA_ORCHESTRATOR_DIR": str(deployed.checkout),
        }
        workers.append(prefect_workers(f"infra-{target}", env=env, cwd=deployed.checkout))
    bridge: BridgeProcess = webhook_bridge(secret_block="infra-webhook-secret", github=github_server.env("bot", REPO))
    mark("clusters, GitHub, workers and bridge up")
    before = run_ids(deployed)

    # 1. execute-plan on the prod PR: infra-apply/prod scales web 2 -> 4
    github_server.add_label(REPO, number, "execute-plan", "walt")
    started = time.monotonic()
    answer = bridge.post(labeled_payload(github_server, number, "execute-plan", "walt"), "delivery-apply-1")
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 200, answer.text
    assert answer.json()["target"] == "prod" and answer.json()["plan"] == PLAN_PATH
    applied = wait_run(deployed, "infra-apply", "prod", before["infra-apply/prod"], workers)
    assert applied["state_type"] == "COMPLETED", server.logs(applied["id"])[-20:]
    assert applied["parameters"]["pr"] == number and applied["parameters"]["execute"] is True
    assert replicas(prod) == 4 and replicas(staging) == 2
    mark(f"infra-apply/prod completed (run created {applied['created']}, started {applied['start_time']}, "
         f"ended {applied['end_time']})")

    # 2. rollback-plan: infra-rollback/prod restores 2 replicas
    github_server.add_label(REPO, number, "rollback-plan", "walt")
    rollback_body = labeled_payload(github_server, number, "rollback-plan", "walt")
    mid = run_ids(deployed)
    answer = bridge.post(rollback_body, "delivery-rollback-1")
    assert answer.status_code == 200, answer.text
    run = wait_run(deployed, "infra-rollback", "prod", mid["infra-rollback/prod"], workers)
    assert run["state_type"] == "COMPLETED", server.logs(run["id"])[-20:]
    assert run["parameters"] == {**run["parameters"], "pr": number, "plan": PLAN_PATH, "execute": True}
    assert replicas(prod) == 2, "prod was not restored"
    assert replicas(staging) == 2, "staging was touched"
    mark(f"infra-rollback/prod completed (run created {run['created']}, started {run['start_time']}, "
         f"ended {run['end_time']})")

    # the step table is in the Prefect API
    artifacts = server.artifacts(run["id"])
    tables = [a for a in artifacts if a["type"] == "table"]
    assert tables, f"no table artifact among {[a['type'] for a in artifacts]}"
    table_text = json.dumps(tables[0]["data"])
    assert "scale deployment/web --replicas=2" in table_text, table_text[:500]  # the exact reverse step
    assert "succeeded" in table_text
    assert tables[0]["key"] and "rollback" in tables[0]["key"]

    # the PR comment is there (and the trigger label was consumed)
    comments = [c.body for c in github_server.issue_comments(REPO, number)]
    assert any("rollback" in (body or "").lower() for body in comments), comments

    # 3. a replayed delivery and a bad signature start nothing
    after = run_ids(deployed)
    replay = bridge.post(rollback_body, "delivery-rollback-1")
    assert replay.status_code == 202 and "already handled" in replay.json()["reason"]
    forged = bridge.post(rollback_body, "delivery-rollback-2", signature="sha256=" + "0" * 64)
    assert forged.status_code == 401
    unsigned = bridge.post(rollback_body, "delivery-rollback-3", signature="")
    assert unsigned.status_code == 401
    unlabeled = json.loads(rollback_body)
    unlabeled["action"] = "unlabeled"
    ignored = bridge.post(json.dumps(unlabeled).encode(), "delivery-unlabeled-1")
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored"
    foreign = json.loads(rollback_body)
    foreign["label"]["name"] = "bug"
    assert bridge.post(json.dumps(foreign).encode(), "delivery-foreign-1").status_code == 202
    time.sleep(3)  # triggers fire in ~0.1 s and workers poll every second: enough to see a stray run
    assert run_ids(deployed) == after
    # staging's deployments never ran, for apply or rollback
    final = run_ids(deployed)
    for flow in FLOWS:
        assert final[f"{flow}/staging"] == before[f"{flow}/staging"]
    assert len(final["infra-rollback/prod"] - before["infra-rollback/prod"]) == 1
    assert len(final["infra-apply/prod"] - before["infra-apply/prod"]) == 1
    assert "webhook-secret-for-tests" not in bridge.log()

    SEEN.update(server=server, run=run, table=tables[0], table_text=table_text)


def _visible_text(dom: str) -> str:
    dom = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def header_boxes(chromium: str, url: str, profile: Path, width: int, timeout_s: float = 60) -> dict[str, Any]:
    """The page's width and each table header's (text, left, right) as Chromium lays it out at `width` px, read
    over the DevTools protocol once the page has rendered its table."""
    from websockets.sync.client import connect

    browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                f"--window-size={width},1000", "--remote-debugging-port=0",
                                f"--user-data-dir={profile}", "about:blank"], stderr=subprocess.PIPE, text=True)
    try:
        assert browser.stderr is not None
        port = next(int(found[1]) for line in browser.stderr
                    if (found := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)))
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        with connect(next(page["webSocketDebuggerUrl"] for page in pages if page["type"] == "page"),
                     max_size=None) as socket:
            calls = iter(range(1, 10_000))

            def call(method: str, **params: Any) -> dict[str, Any]:
                number = next(calls)
                socket.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    answer = json.loads(socket.recv())
                    if answer.get("id") == number:
                        return dict(answer.get("result", {}))

            call("Page.navigate", url=url)
            script = ("JSON.stringify({width: document.documentElement.clientWidth, headers: [...document"
                      ".querySelectorAll('th')].map(th => {const box = th.getBoundingClientRect(); "
                      "return [th.innerText.trim(), box.left, box.right]})})")
            deadline = time.monotonic() + timeout_s
            while True:
                value = call("Runtime.evaluate", expression=script, returnByValue=True)["result"].get("value")
                layout: dict[str, Any] = json.loads(value) if value else {"headers": []}
                if layout["headers"] or time.monotonic() > deadline:
                    return layout
                time.sleep(0.5)
    finally:
        browser.kill()
        browser.wait()


def test_browser_shows_the_run_and_its_step_table(tmp_path: Path) -> None:
    """Headless Chromium opens the flow run page (Artifacts tab) and the table artifact it links to, at 1280 px:
    the object, field, before and after columns are on screen."""
    if not SEEN:
        pytest.fail("the end-to-end run did not complete, so there is no flow run to look at")
    chromium = chromium_binary()
    if chromium is None:
        pytest.fail("chromium is not installed (deployments/ci_services.sh installs it)")
    server, run, table = SEEN["server"], SEEN["run"], SEEN["table"]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1280,1000", "--virtual-time-budget=15000"]  # fmt: skip

    def browse(url: str, name: str) -> str:
        # the UI's deep links answer 200 (with Accept: text/html)
        assert httpx.get(url, headers={"Accept": "text/html"}, timeout=10).status_code == 200
        shot = tmp_path / f"{name}.png"
        done = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / ('profile-' + name)}",
                               f"--screenshot={shot}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=90)  # fmt: skip
        assert shot.exists() and shot.stat().st_size > 20_000, f"screenshot missing or blank: {shot}"
        keep = os.environ.get("INFRA_SCREENSHOT_DIR")  # keep the screenshots for people (CI artifacts)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
        return _visible_text(done.stdout)

    run_page = browse(f"{server.ui_url}/v2/runs/flow-run/{run['id']}?tab=Artifacts", "flow-run")
    assert run["name"] in run_page and "infra-rollback" in run_page
    assert table["key"] in run_page, run_page[:2000]
    table_page = browse(f"{server.ui_url}/artifacts/artifact/{table['id']}", "artifact")
    assert table["key"] in table_page
    rows = table["data"] if isinstance(table["data"], list) else json.loads(table["data"])
    for row in rows:  # every step row is rendered, cell by cell
        for value in row.values():
            text = str(value).strip()
            if isinstance(value, str) and text and len(text) < 80:  # numbers are reformatted by the UI
                assert text in table_page, f"{text!r} not rendered in the table page: {table_page[:1500]}"
    layout = header_boxes(chromium, f"{server.ui_url}/artifacts/artifact/{table['id']}", tmp_path / "profile-layout",
                          1280)
    boxes = {text.lower(): (left, right) for text, left, right in layout["headers"]}
    assert layout["width"] <= 1280 and {"object", "field", "before", "after"} <= set(boxes), layout
    for column in ("object", "field", "before", "after"):
        left, right = boxes[column]
        assert 0 <= left < right <= layout["width"], f"{column} is off screen at 1280 px: {layout}"
