"""GitHub webhook bridge: a signed ``pull_request`` ``labeled`` delivery in, one Prefect event out.

Run it with ``infra-webhook --port 8787`` (``--host``, ``--state``, ``--routes``; see ``--help``). Endpoints:

- ``POST /`` (also ``/webhook``, ``/github``): the GitHub webhook. Answers:
  ``401`` missing/wrong ``X-Hub-Signature-256`` (checked first, over the raw body, with ``hmac.compare_digest``);
  ``400`` signed but malformed; ``413`` body over 5 MiB; ``202 {"status": "ignored", "reason": ...}`` for other
  events, other actions, other labels, unroutable PRs and repeated ``X-GitHub-Delivery`` ids;
  ``200 {"status": "emitted", ...}`` when the Prefect event was handed to Prefect; ``503`` when emitting failed
  (the delivery id is then released, so a manual redelivery from GitHub works).
- ``GET /healthz``: ``200 {"ok": true, ...}`` (no secrets in it).

Routing (PR -> target and plan path), kept deliberately simple:

1. Convention: the PR's head branch is ``infra-scale/<target>`` or ``infra-scale/<target>/<anything>`` (what
   infra-scale opens), giving target ``<target>`` and plan ``ops/plans/infra-scale/<target>/plan.yaml``.
2. Optional routes file (``--routes FILE`` or ``INFRA_WEBHOOK_ROUTES``), YAML::

       repos:
         acme/infra:                     # only listed repositories are routed when a routes file is given
           targets: [prod, staging]       # allowed targets (default: any valid name)
           plan: "ops/plans/infra-scale/{target}/plan.yaml"   # plan path template (default as above)
           branch_prefix: "infra-scale/"  # head-branch prefix that carries the target (default as above)

Target names must match ``[a-z0-9][a-z0-9-]{0,62}``; anything else is ignored.

The event (matched by the deployments' triggers in ``prefect.yaml``)::

    event:    github.pull_request.labeled
    resource: {"prefect.resource.id": "github.pr.<owner>/<repo>/<number>", "github.label": <label>,
               "github.target": <target>, "github.repository": <owner/repo>}
    payload:  {"number", "repository", "plan", "target", "label", "sender", "head_sha", "head_ref", "delivery"}

Secret: ``GITHUB_WEBHOOK_SECRET`` or, when empty, the Prefect Secret block named by
``GITHUB_WEBHOOK_SECRET_BLOCK``. It is never logged or echoed. Delivery ids are kept in a small SQLite file
(``--state`` / ``INFRA_WEBHOOK_STATE``, default ``~/.infra-orchestrator/webhook-deliveries.sqlite3``), newest
10 000 only, so duplicates are dropped across restarts with bounded storage. Prefect settings
(``PREFECT_API_URL``, ``PREFECT_API_KEY``) come from the environment as for any Prefect client.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("infra.webhook")

LABELS = ("execute-plan", "rollback-plan")
EVENT_NAME = "github.pull_request.labeled"
MAX_BODY = 5 * 1024 * 1024
MAX_DELIVERIES = 10_000
DEFAULT_PLAN_TEMPLATE = "ops/plans/infra-scale/{target}/plan.yaml"
DEFAULT_BRANCH_PREFIX = "infra-scale/"
TARGET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
DEFAULT_STATE = Path.home() / ".infra-orchestrator" / "webhook-deliveries.sqlite3"

Emitter = Callable[[str, dict[str, str], dict[str, Any]], None]


# --------------------------------------------------------------------------- signature
def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only for a well-formed ``sha256=<hex>`` header equal to HMAC-SHA256(secret, body)."""
    if not header or not secret:
        return False
    expected = signature_for(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))


# --------------------------------------------------------------------------- delivery ids
class DeliveryLog:
    """Seen ``X-GitHub-Delivery`` ids in SQLite (a file for durability, ``:memory:`` for tests), bounded."""

    def __init__(self, path: str | Path = ":memory:", limit: int = MAX_DELIVERIES) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, seen REAL NOT NULL)")
        self._lock = threading.Lock()
        self._limit = limit

    def claim(self, delivery: str) -> bool:
        """Record the id; False when it was already there (a repeat)."""
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO deliveries (id, seen) VALUES (?, ?)", (delivery, time.time()))
            if cur.rowcount == 0:
                return False
            self._db.execute(
                "DELETE FROM deliveries WHERE rowid <= (SELECT MAX(rowid) FROM deliveries) - ?", (self._limit,)
            )
            return True

    def release(self, delivery: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM deliveries WHERE id = ?", (delivery,))

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- routing
@dataclass(frozen=True)
class RepoRoute:
    targets: tuple[str, ...] | None = None
    plan: str = DEFAULT_PLAN_TEMPLATE
    branch_prefix: str = DEFAULT_BRANCH_PREFIX


@dataclass(frozen=True)
class Routes:
    repos: Mapping[str, RepoRoute] | None = None  # None: any repository, by convention

    @classmethod
    def load(cls, path: str | Path | None) -> Routes:
        if not path:
            return cls()
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        repos: dict[str, RepoRoute] = {}
        for name, spec in (data.get("repos") or {}).items():
            spec = spec or {}
            targets = spec.get("targets")
            repos[str(name).lower()] = RepoRoute(
                targets=tuple(str(t) for t in targets) if targets is not None else None,
                plan=str(spec.get("plan", DEFAULT_PLAN_TEMPLATE)),
                branch_prefix=str(spec.get("branch_prefix", DEFAULT_BRANCH_PREFIX)),
            )
        return cls(repos)

    def route(self, repository: str, head_ref: str) -> tuple[str, str] | str:
        """(target, plan path), or the reason the PR is not routable."""
        if self.repos is None:
            spec = RepoRoute()
        elif repository.lower() in self.repos:
            spec = self.repos[repository.lower()]
        else:
            return f"repository {repository} is not in the routes file"
        if not head_ref.startswith(spec.branch_prefix):
            return f"head branch {head_ref!r} does not start with {spec.branch_prefix!r}"
        target = head_ref[len(spec.branch_prefix) :].split("/", 1)[0]
        if not TARGET_RE.match(target):
            return f"head branch {head_ref!r} names no valid target"
        if spec.targets is not None and target not in spec.targets:
            return f"target {target!r} is not routed for {repository}"
        return target, spec.plan.format(target=target)


# --------------------------------------------------------------------------- decision (pure)
@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    event: tuple[str, dict[str, str], dict[str, Any]] | None = None


def _ignored(reason: str) -> Outcome:
    return Outcome(202, {"status": "ignored", "reason": reason})


def decide(headers: Mapping[str, str], body: bytes, secret: bytes, routes: Routes) -> Outcome:
    """Everything but the delivery log and the emission: signature, event filter, routing, the event to emit."""
    if not signature_ok(secret, body, headers.get("x-hub-signature-256")):
        return Outcome(401, {"status": "unauthorized", "reason": "missing or wrong X-Hub-Signature-256"})
    kind = headers.get("x-github-event", "")
    if kind != "pull_request":
        return _ignored(f"event {kind or '(none)'} is not handled")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Outcome(400, {"status": "bad request", "reason": "body is not JSON"})
    if not isinstance(data, dict):
        return Outcome(400, {"status": "bad request", "reason": "body is not a JSON object"})
    action = data.get("action")
    if action != "labeled":
        return _ignored(f"action {action!r} is not handled")
    label = (data.get("label") or {}).get("name")
    if label not in LABELS:
        return _ignored(f"label {label!r} is not ours")
    pr = data.get("pull_request") or {}
    number = data.get("number", pr.get("number"))
    repository = (data.get("repository") or {}).get("full_name")
    head = pr.get("head") or {}
    head_ref, head_sha = head.get("ref"), head.get("sha")
    if not isinstance(number, int) or number <= 0 or not isinstance(repository, str) or not REPO_RE.match(repository):
        return Outcome(400, {"status": "bad request", "reason": "payload lacks number or repository.full_name"})
    if not isinstance(head_ref, str):
        return _ignored("pull request has no head ref")
    routed = routes.route(repository, head_ref)
    if isinstance(routed, str):
        return _ignored(routed)
    target, plan = routed
    resource = {
        "prefect.resource.id": f"github.pr.{repository}/{number}",
        "prefect.resource.name": f"{repository}#{number}",
        "github.label": label,
        "github.target": target,
        "github.repository": repository,
    }
    payload = {
        "number": number,
        "repository": repository,
        "plan": plan,
        "target": target,
        "label": label,
        "sender": (data.get("sender") or {}).get("login"),
        "head_sha": head_sha,
        "head_ref": head_ref,
        "delivery": headers.get("x-github-delivery"),
    }
    summary = {"status": "emitted", "event": EVENT_NAME, "target": target, "plan": plan, "pr": number, "label": label}
    return Outcome(200, summary, (EVENT_NAME, resource, payload))


def prefect_emitter(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
    """Hand the event to Prefect's events worker; the event id derives from the delivery id (stable on redelivery)."""
    from prefect.events import emit_event

    delivery = str(payload.get("delivery") or "")
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"github-delivery:{delivery}") if delivery else None
    if emit_event(event=event, resource=resource, payload=payload, id=event_id) is None:
        raise RuntimeError("Prefect did not emit the event (is PREFECT_API_URL set?)")


def warm_up_prefect() -> None:
    """Import Prefect and start its events worker before serving, so the first delivery answers quickly too."""
    from prefect.events.worker import EventsWorker

    EventsWorker.instance()


# --------------------------------------------------------------------------- HTTP
@dataclass
class Bridge:
    secret: bytes = field(repr=False)
    routes: Routes
    deliveries: DeliveryLog
    emit: Emitter = prefect_emitter
    started: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=dict)

    def handle(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        outcome = decide(headers, body, self.secret, self.routes)
        event = outcome.event
        if event is not None:
            delivery = headers.get("x-github-delivery", "")
            if not delivery or len(delivery) > 128:
                outcome = Outcome(400, {"status": "bad request", "reason": "missing or oversized X-GitHub-Delivery"})
            elif not self.deliveries.claim(delivery):
                outcome = _ignored(f"delivery {delivery} was already handled")
            else:
                try:
                    self.emit(*event)
                except Exception as error:  # emission failed: let GitHub's redelivery try again
                    self.deliveries.release(delivery)
                    log.error("emitting the Prefect event failed: %s", type(error).__name__)
                    outcome = Outcome(503, {"status": "error", "reason": "could not emit the Prefect event"})
        key = str(outcome.body.get("status"))
        self.counts[key] = self.counts.get(key, 0) + 1
        return outcome


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "infra-webhook"
    sys_version = ""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in ("/healthz", "/health"):
            bridge = self.server.bridge
            self._send(
                200,
                {
                    "ok": True,
                    "uptime_s": round(time.time() - bridge.started, 1),
                    "deliveries_remembered": len(bridge.deliveries),
                    "counts": bridge.counts,
                },
            )
        else:
            self._send(404, {"status": "not found"})

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] not in ("/", "/webhook", "/github"):
            self._send(404, {"status": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(413 if length > MAX_BODY else 400, {"status": "bad request", "reason": "body size"})
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.bridge.handle(headers, body)
        log.info(
            "delivery=%s event=%s -> %d %s",
            headers.get("x-github-delivery", "-")[:64],
            headers.get("x-github-event", "-")[:40],
            outcome.status,
            outcome.body.get("reason", ""),
        )
        self._send(outcome.status, outcome.body)

    def log_message(self, format: str, *args: Any) -> None:  # route access logs through logging (no headers)
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], bridge: Bridge) -> None:
        self.bridge = bridge
        super().__init__(address, _Handler)


def make_server(bridge: Bridge, host: str = "127.0.0.1", port: int = 0) -> _Server:
    _Handler.disable_nagle_algorithm = True
    return _Server((host, port), bridge)


def load_secret(env: Mapping[str, str] = os.environ) -> bytes:
    """The webhook secret from ``GITHUB_WEBHOOK_SECRET`` or the Prefect Secret block ``GITHUB_WEBHOOK_SECRET_BLOCK``."""
    value = env.get("GITHUB_WEBHOOK_SECRET", "")
    if not value and env.get("GITHUB_WEBHOOK_SECRET_BLOCK"):
        from prefect.blocks.system import Secret

        block: Any = Secret.load(env["GITHUB_WEBHOOK_SECRET_BLOCK"], _sync=True)  # type: ignore[call-arg]
        value = str(block.get())
    if not value:
        raise ValueError("set GITHUB_WEBHOOK_SECRET or GITHUB_WEBHOOK_SECRET_BLOCK")
    return value.encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra-webhook", description="GitHub webhook -> Prefect event bridge.")
    parser.add_argument("--host", default=os.environ.get("INFRA_WEBHOOK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("INFRA_WEBHOOK_PORT", "8787")))
    parser.add_argument(
        "--state",
        default=os.environ.get("INFRA_WEBHOOK_STATE", str(DEFAULT_STATE)),
        help="SQLite file remembering delivery ids (':memory:' for none)",
    )
    parser.add_argument(
        "--routes", default=os.environ.get("INFRA_WEBHOOK_ROUTES") or None, help="optional routes YAML (see module doc)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("INFRA_WEBHOOK_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        secret = load_secret()
        routes = Routes.load(args.routes)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not os.environ.get("PREFECT_API_URL"):
        print("error: set PREFECT_API_URL (the bridge emits events to a running Prefect server)", file=sys.stderr)
        return 2
    warm_up_prefect()
    bridge = Bridge(secret=secret, routes=routes, deliveries=DeliveryLog(args.state))
    server = make_server(bridge, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("infra-webhook listening on http://%s:%d", *server.server_address[:2])
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        bridge.deliveries.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
