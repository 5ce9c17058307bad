"""The webhook bridge: signature, repositories served, replays keyed on the signed body, filtering, routing, and
the ASGI server's limits (read timeouts, body size, connections), over real sockets; then the real process
against a real Prefect server."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from deployments.webhook import (
    Bridge,
    Limits,
    ReplayLog,
    Routes,
    create_app,
    decide,
    main,
    replay_key,
    server_config,
    signature_for,
    signature_ok,
)
from tests.deploy.conftest import BridgeProcess, Deployed
from tests.fixtures.github import GitHubServer
from tests.fixtures.prefect_server import PrefectServer

SECRET = b"s3cret-for-tests"
REPO = "acme/infra"
HEAD_SHA = "a" * 40
SERVED = Routes.for_repositories([REPO])
PROD_PLAN = "ops/plans/infra-scale/prod/plan.yaml"


def prod_plan(repository: str, number: int) -> list[str]:
    """The files of a PR that changes the prod plan (as GitHub's pulls/N/files would list them)."""
    return ["README.md", PROD_PLAN]

Emitted = list[tuple[str, dict[str, str], dict[str, Any], uuid.UUID]]


def labeled(
    label: str = "rollback-plan",
    number: int = 7,
    repo: str = REPO,
    ref: str = "infra-scale/prod",
    action: str = "labeled",
    sha: Any = HEAD_SHA,
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "label": {"name": label},
        "sender": {"login": "walt"},
        "repository": {"full_name": repo},
        "pull_request": {"number": number, "head": {"ref": ref, "sha": sha}},
    }


def encoded(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def headers_for(
    body: bytes, delivery: str = "d-1", event: str = "pull_request", secret: bytes = SECRET
) -> dict[str, str]:
    return {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": signature_for(secret, body),
        "content-type": "application/json",
    }


# --------------------------------------------------------------------------- pure
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


def test_decide_builds_the_event_with_the_labeled_head_sha() -> None:
    body = encoded(labeled())
    out = decide(headers_for(body), body, SECRET, SERVED, prod_plan)
    assert out.status == 200 and out.event is not None
    name, resource, payload = out.event
    assert name == "github.pull_request.labeled"
    assert resource["prefect.resource.id"] == "github.pr.acme/infra/7"
    assert resource["github.label"] == "rollback-plan" and resource["github.target"] == "prod"
    assert payload["number"] == 7 and payload["repository"] == REPO
    assert payload["plan"] == "ops/plans/infra-scale/prod/plan.yaml"
    assert payload["head_sha"] == HEAD_SHA


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_a_routed_pr_that_opens_or_gets_commits_starts_infra_plan(action: str) -> None:
    body = encoded({**labeled(action=action), "label": None})
    out = decide(headers_for(body), body, SECRET, SERVED, prod_plan)
    assert out.status == 200 and out.event is not None
    name, resource, payload = out.event
    assert name == "github.pull_request.plan" and "github.label" not in resource
    assert (resource["github.target"], payload["plan"], payload["head_sha"], payload["action"]) == \
        ("prod", "ops/plans/infra-scale/prod/plan.yaml", HEAD_SHA, action)


@pytest.mark.parametrize("action", ["labeled", "synchronize"])
def test_the_plans_come_from_the_prs_changed_files_not_its_branch(action: str) -> None:
    """Issue 25: the head branch (chosen by the PR's author) named the plan to run; now GitHub's list of the PR's
    files does: one event per plan file it changes, none for plan-looking names that are not valid targets."""
    files = ["ops/plans/infra-scale/staging/plan.yaml", "ops/plans/infra-scale/prod/plan.yaml", "README.md",
             "ops/plans/infra-scale/PROD/plan.yaml", "ops/plans/infra-scale/a/b/plan.yaml",
             "ops/plans/infra-scale/prod/previous-hpa.yaml"]
    body = encoded(labeled(label="execute-plan", ref="infra-scale/frozen", action=action))
    out = decide(headers_for(body), body, SECRET, SERVED, lambda repository, number: files)
    assert out.status == 200
    assert [(event[1]["github.target"], event[2]["plan"]) for event in out.events] == [
        ("prod", "ops/plans/infra-scale/prod/plan.yaml"), ("staging", "ops/plans/infra-scale/staging/plan.yaml")]
    none = decide(headers_for(body), body, SECRET, SERVED, lambda repository, number: ["README.md"])
    assert (none.status, none.body["reason"]) == (202, "the PR changes no plan file "
                                                       "(ops/plans/infra-scale/{target}/plan.yaml)")
    unknown = decide(headers_for(body), body, SECRET, SERVED)
    assert unknown.status == 202 and "no GitHub settings" in unknown.body["reason"]

    def down(repository: str, number: int) -> list[str]:
        raise ConnectionError("GitHub is down")

    assert decide(headers_for(body), body, SECRET, SERVED, down).status == 503


def test_a_plan_event_needs_a_pr_that_touches_the_plans() -> None:
    emitted: Emitted = []
    changed: dict[int, list[str]] = {7: ["README.md"], 8: ["ops/plans/infra-scale/prod/plan.yaml"]}
    bridge = Bridge(secret=SECRET, routes=SERVED, replays=ReplayLog(), emit=lambda *event: emitted.append(event),
                    files_of=lambda repository, number: changed[number])
    for number in (7, 8):
        body = encoded(labeled(action="synchronize", number=number))
        out = bridge.handle({**headers_for(body), "x-github-delivery": str(uuid.uuid4())}, body)
        assert out.status == (202 if number == 7 else 200), out.body
    assert [event[2]["number"] for event in emitted] == [8]


@pytest.mark.parametrize(
    ("payload", "event", "reason"),
    [
        (labeled(action="unlabeled"), "pull_request", "action"),
        (labeled(action="closed"), "pull_request", "action"),
        (labeled(label="bug"), "pull_request", "not ours"),
        (labeled(), "issues", "event issues"),
        (labeled(), "ping", "event ping"),
    ],
)
def test_ignored(payload: dict[str, Any], event: str, reason: str) -> None:
    body = encoded(payload)
    out = decide(headers_for(body, event=event), body, SECRET, SERVED, prod_plan)
    assert out.status == 202 and out.event is None
    assert reason in out.body["reason"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (labeled(sha=None), "head.sha"),
        (labeled(sha="A" * 40), "head.sha"),
        (labeled(sha=HEAD_SHA + "\n"), "head.sha"),
        (labeled(number=0), "number"),
        ({**labeled(), "number": True}, "number"),
        (labeled(repo="acme/infra\n"), "repository.full_name"),
    ],
)
def test_malformed_labeled_payloads_are_bad_requests(payload: dict[str, Any], reason: str) -> None:
    body = encoded(payload)
    out = decide(headers_for(body), body, SECRET, SERVED, prod_plan)
    assert out.status == 400 and out.event is None and reason in out.body["reason"]


@pytest.mark.parametrize("action", ["labeled", "opened"])
def test_an_unserved_repository_is_refused_with_its_reason(action: str) -> None:
    body = encoded(labeled(repo="evil/infra", action=action))
    out = decide(headers_for(body), body, SECRET, SERVED, prod_plan)
    assert out.status == 403 and out.event is None
    reason = "repository evil/infra is not served by this bridge (serves: acme/infra)"
    assert out.body == {"status": "refused", "reason": reason}


def test_repository_names_compare_case_insensitively() -> None:
    body = encoded(labeled(repo="ACME/Infra"))
    assert decide(headers_for(body), body, SECRET, SERVED, prod_plan).status == 200


def test_routes_file(tmp_path: Path) -> None:
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text("repos:\n  acme/infra:\n    targets: [prod, staging]\n    plan: 'plans/{target}.yaml'\n")
    routes = Routes.load(routes_file)
    assert routes.served() == [REPO]
    assert routes.plans(REPO, ["plans/staging.yaml", "plans/dev.yaml", "README.md"]) == [
        ("staging", "plans/staging.yaml")]
    assert routes.plans(REPO, ["plans/dev.yaml"]) == "the PR changes no plan file (plans/{target}.yaml)"
    body = encoded(labeled(repo="evil/infra"))
    assert decide(headers_for(body), body, SECRET, routes, prod_plan).status == 403


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("repos: {}\n", "repos: must map at least one owner/name to its routing"),
        ("[1, 2]\n", "repos: must map at least one owner/name to its routing"),
        ("repos:\n  not-a-repo: {}\n", "repos.not-a-repo: 'not-a-repo' is not owner/name"),
        ("repos:\n  acme/infra: {targets: [Prod]}\n", "repos.acme/infra.targets: must be a list of target names"),
        ("repos: [\n", "(file): cannot be read as YAML"),
    ],
)
def test_bad_routes_files_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(text)
    with pytest.raises(ValueError) as raised:
        Routes.load(routes_file)
    assert str(raised.value).startswith(f"{routes_file}: {message}")


def test_repositories_come_from_configuration_only(tmp_path: Path) -> None:
    assert Routes.from_config(None, {"GH_OWNER": "acme", "GH_REPO": "infra"}).served() == [REPO]
    listed = Routes.from_config(None, {"INFRA_REPOSITORIES": "acme/infra, Acme/Web", "GH_OWNER": "x", "GH_REPO": "y"})
    assert listed.served() == ["acme/infra", "acme/web"]
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text("repos:\n  acme/ops: {}\n")
    assert Routes.from_config(str(routes_file), {"GH_OWNER": "acme", "GH_REPO": "infra"}).served() == ["acme/ops"]
    with pytest.raises(ValueError, match="not both"):
        Routes.from_config(str(routes_file), {"INFRA_REPOSITORIES": REPO})
    with pytest.raises(ValueError, match="INFRA_REPOSITORIES: 'acme' is not owner/name"):
        Routes.from_config(None, {"INFRA_REPOSITORIES": "acme"})
    with pytest.raises(ValueError, match="serves only repositories it is configured for"):
        Routes.from_config(None, {"GH_OWNER": "acme"})


def test_replay_key_is_the_signed_body_not_the_delivery_id() -> None:
    body = encoded(labeled())
    signature = signature_for(SECRET, body)
    assert replay_key(signature, body) == replay_key(signature + "\n", body)
    assert replay_key(signature, body) != replay_key(signature, body + b" ")


def test_emit_failure_releases_the_replay_entry() -> None:
    calls: list[int] = []

    def flaky(event: str, resource: dict[str, str], payload: dict[str, Any], event_id: uuid.UUID) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("server down")

    b = Bridge(secret=SECRET, routes=SERVED, replays=ReplayLog(), emit=flaky, files_of=prod_plan)
    body = encoded(labeled())
    assert b.handle(headers_for(body, delivery="x"), body).status == 503
    assert b.handle(headers_for(body, delivery="x"), body).status == 200
    assert b.handle(headers_for(body, delivery="x"), body).status == 202


def test_replay_log_is_bounded() -> None:
    replays = ReplayLog(limit=50)
    for i in range(200):
        assert replays.claim(f"key-{i}")
    assert len(replays) <= 50
    assert not replays.claim("key-199")


# --------------------------------------------------------------------------- the ASGI app over real sockets
class Served:
    """The bridge's app on the bridge's uvicorn configuration, on a 127.0.0.1 port of its own."""

    def __init__(self, bridge: Bridge, limits: Limits, emitted: Emitted) -> None:
        self.bridge = bridge
        self.emitted = emitted  # what the bridge's emitter received
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(server_config(create_app(bridge, limits), limits))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def post(self, body: bytes, headers: dict[str, str], path: str = "/") -> tuple[int, dict[str, Any]]:
        answer = httpx.post(self.url + path, content=body, headers=headers, timeout=5)
        return answer.status_code, answer.json()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(**limits) -> Served``, its replay state in tmp_path/replays.sqlite3."""
    running: list[Served] = []

    def start(**limits: Any) -> Served:
        emitted: Emitted = []
        bridge = Bridge(secret=SECRET, routes=SERVED, replays=ReplayLog(tmp_path / "replays.sqlite3"),
                        emit=lambda *event: emitted.append(event), files_of=prod_plan)  # fmt: skip
        served = Served(bridge, Limits(**limits), emitted)
        running.append(served)
        return served

    yield start
    for served in running:
        served.stop()
        served.bridge.replays.close()


def test_http_signature_missing_wrong_and_good(serve: Callable[..., Served]) -> None:
    bridge = serve()
    body = encoded(labeled())
    h = headers_for(body)
    missing = {k: v for k, v in h.items() if k != "x-hub-signature-256"}
    assert bridge.post(body, missing)[0] == 401
    wrong = {**h, "x-hub-signature-256": signature_for(b"other", body)}
    assert bridge.post(body, wrong)[0] == 401
    tampered = body.replace(b'"number": 7', b'"number": 8')
    assert bridge.post(tampered, h)[0] == 401
    assert bridge.emitted == []
    started = time.monotonic()
    status, answer = bridge.post(body, h, path="/webhook")
    assert time.monotonic() - started < 1.0
    assert status == 200 and answer["status"] == "emitted" and answer["target"] == "prod"
    ((name, _resource, payload, _event_id),) = bridge.emitted
    assert name == "github.pull_request.labeled" and payload["head_sha"] == HEAD_SHA


def test_http_unserved_repository_is_refused_and_logged(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    bridge = serve()
    body = encoded(labeled(repo="evil/infra"))
    with caplog.at_level(logging.INFO, logger="infra.webhook"):
        status, answer = bridge.post(body, headers_for(body, delivery="evil-1"))
    assert status == 403 and answer["status"] == "refused"
    assert "repository evil/infra is not served by this bridge" in answer["reason"]
    assert any("evil-1" in r.message and "403 repository evil/infra is not served" in r.message
               and r.levelno == logging.WARNING for r in caplog.records)  # fmt: skip
    assert bridge.emitted == []


def test_http_same_signed_body_under_new_or_upper_cased_delivery_is_a_replay(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    bridge = serve()
    body = encoded(labeled())
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert bridge.post(body, headers_for(body, delivery=delivery))[0] == 200
    for again in (delivery, delivery.upper(), "a-brand-new-id"):
        status, answer = bridge.post(body, headers_for(body, delivery=again))
        assert status == 202 and "already handled" in answer["reason"], again
    assert len(bridge.emitted) == 1
    other = encoded(labeled(label="execute-plan"))
    assert bridge.post(other, headers_for(other, delivery=delivery))[0] == 200, "a new body is a new delivery"
    assert len({event_id for *_, event_id in bridge.emitted}) == 2
    # a new process over the same state file still remembers the body
    restarted = ReplayLog(tmp_path / "replays.sqlite3")
    assert not restarted.claim(replay_key(signature_for(SECRET, body), body))
    restarted.close()


def test_http_ignored_and_health(serve: Callable[..., Served]) -> None:
    bridge = serve()
    body = encoded(labeled(label="bug"))
    assert bridge.post(body, headers_for(body))[0] == 202
    body = encoded(labeled(action="unlabeled"))
    assert bridge.post(body, headers_for(body, delivery="d-2"))[0] == 202
    assert bridge.post(b"not json", headers_for(b"not json", delivery="d-3"))[0] == 400
    assert bridge.emitted == []
    health = httpx.get(bridge.url + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["ok"] is True
    assert health.json()["repositories"] == [REPO]
    assert SECRET.decode() not in health.text
    assert httpx.get(bridge.url + "/", timeout=5).status_code == 405


def test_http_oversized_body_gets_413_declared_or_streamed(serve: Callable[..., Served]) -> None:
    bridge = serve(max_body_bytes=64 * 1024)
    body = encoded({**labeled(), "padding": "x" * 70 * 1024})
    status, answer = bridge.post(body, headers_for(body))
    assert status == 413 and "over 65536 bytes" in answer["reason"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds on what actually arrives
        for _ in range(70):
            yield b"x" * 1024

    streamed = httpx.post(bridge.url + "/", content=chunks(), headers=headers_for(b""), timeout=5)
    assert streamed.status_code == 413
    assert bridge.emitted == []
    small = encoded(labeled())
    assert bridge.post(small, headers_for(small))[0] == 200


def read_until_closed(conn: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    conn.settimeout(timeout)
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def test_slow_loris_body_is_cut_after_the_read_timeout(serve: Callable[..., Served]) -> None:
    bridge = serve(read_timeout_s=1.0)
    body = encoded(labeled())
    conn = bridge.connect()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers_for(body).items())
    conn.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode())
    started = time.monotonic()
    for byte in body[:10]:  # a byte every 0.2 s never completes the body in time
        try:
            conn.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.2)
    received, _ = read_until_closed(conn, 5)
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert time.monotonic() - started < 3.0
    conn.close()
    assert bridge.emitted == []


def test_slow_headers_and_silent_connections_are_closed(serve: Callable[..., Served]) -> None:
    bridge = serve(read_timeout_s=1.0)
    silent, trickling = bridge.connect(), bridge.connect()
    started = time.monotonic()
    for piece in (b"POST / HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n", b"X-C: 3\r\n"):
        try:
            trickling.sendall(piece)  # every byte would cancel uvicorn's own keep-alive timer
        except OSError:
            break
        time.sleep(0.3)
    for conn in (silent, trickling):
        assert read_until_closed(conn, 5)[0] == b""
        conn.close()
    assert time.monotonic() - started < 3.0


def thread_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_200_idle_connections_hold_no_threads_and_are_closed_after_the_timeout(
    serve: Callable[..., Served],
) -> None:
    bridge = serve(read_timeout_s=2.0, max_connections=500)
    body = encoded(labeled())
    assert bridge.post(body, headers_for(body))[0] == 200  # warm: the handler's worker thread exists already
    before = thread_count()
    started = time.monotonic()
    idle = [bridge.connect() for _ in range(200)]
    time.sleep(0.5)
    assert thread_count() <= before + 2
    for conn in idle:
        assert read_until_closed(conn, 6)[0] == b""  # EOF: the server closed it
        conn.close()
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 6.0, elapsed
    other = encoded(labeled(label="execute-plan"))
    assert bridge.post(other, headers_for(other))[0] == 200


def test_connections_beyond_the_limit_get_503(serve: Callable[..., Served]) -> None:
    bridge = serve(max_connections=10)
    idle = [bridge.connect() for _ in range(10)]
    time.sleep(0.2)
    body = encoded(labeled())
    assert httpx.post(bridge.url + "/", content=body, headers=headers_for(body), timeout=5).status_code == 503
    for conn in idle:
        conn.close()
    time.sleep(0.2)
    assert bridge.post(body, headers_for(body))[0] == 200
    assert len(bridge.emitted) == 1


# --------------------------------------------------------------------------- command line
@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET_BLOCK", "PREFECT_API_URL", "GH_OWNER", "GH_REPO",
                 "INFRA_REPOSITORIES", "INFRA_WEBHOOK_ROUTES", "INFRA_WEBHOOK_READ_TIMEOUT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_main_refuses_to_start_without_repositories_secret_or_server(
    bare_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--port", "0", "--state", ":memory:"]
    bare_env.setenv("GITHUB_WEBHOOK_SECRET", "do-not-print-me")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: environment: GH_OWNER: set GH_OWNER and GH_REPO") and err.count("\n") == 1
    bare_env.setenv("GH_OWNER", "acme")
    bare_env.setenv("GH_REPO", "infra")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: environment: PREFECT_API_URL: is required (the bridge emits events to a Prefect server)\n"
    bare_env.delenv("GITHUB_WEBHOOK_SECRET")
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "error: environment: GITHUB_WEBHOOK_SECRET: set it or GITHUB_WEBHOOK_SECRET_BLOCK\n"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--read-timeout", "0"], "--read-timeout: must be a number from 0.1 to 300, not '0'"),
        (["--read-timeout", "1e9"], "--read-timeout: must be a number from 0.1 to 300, not '1e9'"),
        (["--max-body-bytes", "٣٠٠٠"], "--max-body-bytes: must be an integer from 1024 to 26214400"),
        (["--max-body-bytes", str(26 * 1024 * 1024)], "--max-body-bytes: must be an integer from 1024 to 26214400"),
        (["--max-connections", "1"], "--max-connections: must be an integer from 2 to 100000, not '1'"),
        (["--port", "65536"], "--port: must be an integer from 0 to 65535, not '65536'"),
    ],
)
def test_main_refuses_bad_limits_in_one_line(
    bare_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    bare_env.setenv("GITHUB_WEBHOOK_SECRET", "do-not-print-me")
    assert main(["--port", "0", "--state", ":memory:", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: command line: {message}") and err.count("\n") == 1
    assert "do-not-print-me" not in err


# --------------------------------------------------------------------------- the real process, real Prefect
def prefect_events(server: PrefectServer, pr_resource: str, settle_s: float = 3) -> list[dict[str, Any]]:
    """The labeled events Prefect stored for one PR resource: once the first arrived, and ``settle_s`` later."""
    query = {"filter": {"event": {"name": ["github.pull_request.labeled"]},
                        "any_resource": {"id": [pr_resource]}}, "limit": 50}  # fmt: skip
    deadline = time.monotonic() + 15
    while not server.api("POST", "/events/filter", json=query)["events"] and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(settle_s)  # long enough for a second event, had one been emitted, to be stored too
    events: list[dict[str, Any]] = server.api("POST", "/events/filter", json=query)["events"]
    return events


@pytest.mark.timeout(300)
def test_the_process_emits_to_prefect_once_per_signed_body_and_drops_idle_connections(
    prefect_server: PrefectServer, webhook_bridge: Callable[..., BridgeProcess], github_server: GitHubServer,
    tmp_path: Path
) -> None:
    repo = f"acme/infra-{uuid.uuid4().hex[:8]}"  # a PR resource no other test of the session uses
    github_server.create_repo(repo, files={"README.md": "# infra\n"})
    number = github_server.open_pr(repo, head="any-branch-name", files={PROD_PLAN: "namespace: shop\n"})
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"repos:\n  {repo}: {{targets: [prod]}}\n  {REPO}: {{}}\n")
    bridge = webhook_bridge(routes=routes, github=github_server.env("alice", repo))
    body = encoded(labeled(number=number, repo=repo))
    delivery = str(uuid.uuid4())
    answer = bridge.post(body, delivery)
    assert answer.status_code == 200, answer.text + bridge.log()
    for again in (delivery.upper(), str(uuid.uuid4())):
        replay = bridge.post(body, again)
        assert replay.status_code == 202 and "already handled" in replay.json()["reason"]
    foreign = encoded(labeled(number=number, repo="evil/infra"))
    refused = bridge.post(foreign, str(uuid.uuid4()))
    assert refused.status_code == 403 and "evil/infra is not served" in refused.json()["reason"]
    assert "403 repository evil/infra is not served" in bridge.log()
    resource = f"github.pr.{repo}/{number}"
    events = prefect_events(prefect_server, resource)
    assert len(events) == 1, events
    assert events[0]["payload"]["head_sha"] == HEAD_SHA and events[0]["resource"]["github.target"] == "prod"

    pid = bridge.proc.pid
    before = thread_count(pid)
    idle = [socket.create_connection(("127.0.0.1", int(bridge.url.rsplit(":", 1)[1])), timeout=20)
            for _ in range(200)]  # fmt: skip
    time.sleep(1)
    assert thread_count(pid) <= before + 2, "idle connections hold threads"
    for conn in idle:  # the default read timeout is 10 s
        assert read_until_closed(conn, 20)[0] == b""
        conn.close()
    assert httpx.get(bridge.url + "/healthz", timeout=5).json()["counts"] == {"emitted": 1, "ignored": 2,
                                                                              "refused": 1}  # fmt: skip


@pytest.mark.timeout(400)
def test_the_label_trigger_passes_the_events_head_sha_to_the_run(
    deployed: Deployed, webhook_bridge: Callable[..., BridgeProcess], github_server: GitHubServer, tmp_path: Path
) -> None:
    """prefect.yaml's trigger maps the event to the run: ``head_sha`` is the head the labeled event carried, the
    plan is the one the PR changes (its branch name says nothing)."""
    server = deployed.server
    github_server.create_repo(REPO, files={"README.md": "# infra\n"})
    staging = "ops/plans/infra-scale/staging/plan.yaml"
    number = github_server.open_pr(REPO, head="feature/anything", files={staging: "namespace: shop\n"})
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"repos:\n  {REPO}: {{targets: [staging]}}\n")
    bridge = webhook_bridge(routes=routes, github=github_server.env("alice", REPO))
    dep = server.deployment("infra-apply", "staging")
    known = {r["id"] for r in server.flow_runs(dep["id"])}
    sha = uuid.uuid4().hex + "0" * 8
    body = encoded(labeled(label="execute-plan", number=number, ref="feature/anything", sha=sha))
    assert bridge.post(body, str(uuid.uuid4())).status_code == 200
    deadline = time.monotonic() + 30
    new: list[dict[str, Any]] = []
    while not new and time.monotonic() < deadline:
        time.sleep(0.3)
        new = [r for r in server.flow_runs(dep["id"]) if r["id"] not in known]
    try:
        assert len(new) == 1, "the trigger started no run"
        assert new[0]["parameters"] == {**new[0]["parameters"], "pr": number, "head_sha": sha, "execute": True,
                                        "plan": "ops/plans/infra-scale/staging/plan.yaml", "repository": REPO}
    finally:  # no worker may pick it up later in the session
        for run in new:
            server.api("DELETE", f"/flow_runs/{run['id']}")
