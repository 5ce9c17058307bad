"""The webhook bridge without Prefect: signature, replays, filtering, routing, HTTP behaviour, durability."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments.webhook import (
    Bridge,
    DeliveryLog,
    Routes,
    decide,
    make_server,
    signature_for,
    signature_ok,
)

SECRET = b"s3cret-for-tests"


def labeled(
    label: str = "rollback-plan",
    number: int = 7,
    repo: str = "acme/infra",
    ref: str = "infra-scale/prod",
    action: str = "labeled",
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "label": {"name": label},
        "sender": {"login": "walt"},
        "repository": {"full_name": repo},
        "pull_request": {"number": number, "head": {"ref": ref, "sha": "a" * 40}},
    }


def headers_for(
    body: bytes, delivery: str = "d-1", event: str = "pull_request", secret: bytes = SECRET
) -> dict[str, str]:
    return {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": signature_for(secret, body),
        "content-type": "application/json",
    }


def test_githubs_documented_vector() -> None:
    secret, body = b"It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_for(secret, body) == expected
    assert signature_ok(secret, body, expected)
    assert not signature_ok(secret, body, expected[:-1] + "0")
    assert not signature_ok(secret, body + b" ", expected)
    assert not signature_ok(secret, body, None)
    assert not signature_ok(secret, body, "")
    assert not signature_ok(secret, body, expected.replace("sha256=", "sha1="))
    assert not signature_ok(b"", body, expected)


def test_decide_builds_the_event() -> None:
    body = json.dumps(labeled()).encode()
    out = decide(headers_for(body), body, SECRET, Routes())
    assert out.status == 200 and out.event is not None
    name, resource, payload = out.event
    assert name == "github.pull_request.labeled"
    assert resource["prefect.resource.id"] == "github.pr.acme/infra/7"
    assert resource["github.label"] == "rollback-plan" and resource["github.target"] == "prod"
    assert payload["number"] == 7 and payload["repository"] == "acme/infra"
    assert payload["plan"] == "ops/plans/infra-scale/prod/plan.yaml"


@pytest.mark.parametrize(
    ("payload", "event", "reason"),
    [
        (labeled(action="unlabeled"), "pull_request", "action"),
        (labeled(action="opened"), "pull_request", "action"),
        (labeled(label="bug"), "pull_request", "not ours"),
        (labeled(), "issues", "event issues"),
        (labeled(), "ping", "event ping"),
        (labeled(ref="feature/x"), "pull_request", "does not start"),
        (labeled(ref="infra-scale/../../etc"), "pull_request", "no valid target"),
        (labeled(ref="infra-scale/PROD"), "pull_request", "no valid target"),
    ],
)
def test_ignored(payload: dict[str, Any], event: str, reason: str) -> None:
    body = json.dumps(payload).encode()
    out = decide(headers_for(body, event=event), body, SECRET, Routes())
    assert out.status == 202 and out.event is None
    assert reason in out.body["reason"]


def test_routes_file(tmp_path: Path) -> None:
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text("repos:\n  acme/infra:\n    targets: [prod, staging]\n    plan: 'plans/{target}.yaml'\n")
    routes = Routes.load(routes_file)
    assert routes.route("acme/infra", "infra-scale/staging/nightly") == ("staging", "plans/staging.yaml")
    assert "not routed" in str(routes.route("acme/infra", "infra-scale/dev"))
    assert "not in the routes file" in str(routes.route("evil/infra", "infra-scale/prod"))


# --------------------------------------------------------------------------- over HTTP
class Running:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.server = make_server(bridge)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.emitted: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def post(self, body: bytes, headers: dict[str, str], path: str = "/") -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Running]:
    emitted: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    b = Bridge(
        secret=SECRET,
        routes=Routes(),
        deliveries=DeliveryLog(tmp_path / "d.sqlite3"),
        emit=lambda e, r, p: emitted.append((e, r, p)),
    )
    running = Running(b)
    running.emitted = emitted
    yield running
    running.stop()
    b.deliveries.close()


def test_http_signature_missing_wrong_and_good(bridge: Running) -> None:
    body = json.dumps(labeled()).encode()
    h = headers_for(body)
    missing = {k: v for k, v in h.items() if k != "x-hub-signature-256"}
    assert bridge.post(body, missing)[0] == 401
    wrong = {**h, "x-hub-signature-256": signature_for(b"other", body)}
    assert bridge.post(body, wrong)[0] == 401
    tampered = body.replace(b'"number": 7', b'"number": 8')
    assert bridge.post(tampered, h)[0] == 401
    assert bridge.emitted == []
    started = time.monotonic()
    status, answer = bridge.post(body, h)
    assert time.monotonic() - started < 1.0
    assert status == 200 and answer["status"] == "emitted" and answer["target"] == "prod"
    assert len(bridge.emitted) == 1


def test_http_replay_is_ignored_even_after_restart(bridge: Running, tmp_path: Path) -> None:
    body = json.dumps(labeled()).encode()
    assert bridge.post(body, headers_for(body, delivery="g-1"))[0] == 200
    status, answer = bridge.post(body, headers_for(body, delivery="g-1"))
    assert status == 202 and "already handled" in answer["reason"]
    assert len(bridge.emitted) == 1
    # a new process over the same state file still remembers the delivery
    again = DeliveryLog(tmp_path / "d.sqlite3")
    assert not again.claim("g-1")
    assert again.claim("g-2")
    again.close()


def test_http_ignored_and_health(bridge: Running) -> None:
    body = json.dumps(labeled(label="bug")).encode()
    assert bridge.post(body, headers_for(body))[0] == 202
    body = json.dumps(labeled(action="unlabeled")).encode()
    assert bridge.post(body, headers_for(body, delivery="d-2"))[0] == 202
    assert bridge.post(b"not json", headers_for(b"not json", delivery="d-3"))[0] == 400
    assert bridge.emitted == []
    with urllib.request.urlopen(bridge.url + "/healthz", timeout=5) as resp:
        health = json.loads(resp.read())
    assert resp.status == 200 and health["ok"] is True
    assert SECRET.decode() not in json.dumps(health)


def test_emit_failure_releases_the_delivery(tmp_path: Path) -> None:
    calls: list[int] = []

    def flaky(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("server down")

    b = Bridge(secret=SECRET, routes=Routes(), deliveries=DeliveryLog(), emit=flaky)
    body = json.dumps(labeled()).encode()
    assert b.handle(headers_for(body, delivery="x"), body).status == 503
    assert b.handle(headers_for(body, delivery="x"), body).status == 200
    assert b.handle(headers_for(body, delivery="x"), body).status == 202


def test_delivery_log_is_bounded() -> None:
    d = DeliveryLog(limit=50)
    for i in range(200):
        assert d.claim(f"id-{i}")
    assert len(d) <= 50
    assert not d.claim("id-199")


def test_main_refuses_to_start_without_secret_or_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from deployments.webhook import main

    for name in ("GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET_BLOCK", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--port", "0", "--state", ":memory:"]) == 2
    assert "GITHUB_WEBHOOK_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "do-not-print-me")
    assert main(["--port", "0", "--state", ":memory:"]) == 2
    err = capsys.readouterr().err
    assert "PREFECT_API_URL" in err and "do-not-print-me" not in err
