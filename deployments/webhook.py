"""GitHub webhook bridge: a signed ``pull_request`` ``labeled`` delivery in, one Prefect event out.

Run it with ``infra-webhook --port 8787`` (see ``--help``). It serves on uvicorn + Starlette (ASGI): no thread per
connection, and every connection is bounded in time, size and number (see *Limits* below). Endpoints:

- ``POST /`` (also ``/webhook``, ``/github``): the GitHub webhook. Answers:
  ``401`` missing/wrong ``X-Hub-Signature-256`` (checked first, over the raw body, with ``hmac.compare_digest``);
  ``400`` signed but malformed; ``403 {"status": "refused", "reason": ...}`` for a repository this bridge does
  not serve; ``408`` body not received within the read timeout; ``413`` body over the size limit;
  ``202 {"status": "ignored", "reason": ...}`` for other events, other actions, other labels, unroutable PRs and
  replays; ``200 {"status": "emitted", ...}`` when the Prefect event was handed to Prefect; ``503`` when emitting
  failed (the replay entry is then released, so a manual redelivery from GitHub works) or when the connection
  limit is reached.
- ``GET /healthz``: ``200 {"ok": true, ...}`` (no secrets in it).

Repositories served (checked before anything else in the payload is used, and before any event is emitted):
``GH_OWNER``/``GH_REPO`` by default, or ``INFRA_REPOSITORIES="owner/a,owner/b"``, or the ``repos`` of a routes
file. The bridge does not start without one of them.

Routing (PR -> plans and their targets): the plans a PR's event starts are the plan files the PR changes, as
GitHub lists them (``pulls/N/files``, paginated), never a name the PR's author chooses (its head branch):

1. Convention: a changed file ``ops/plans/infra-scale/<target>/plan.yaml`` is a plan for target ``<target>``;
   a PR changing several plans starts one run per plan.
2. Optional routes file (``--routes FILE`` or ``INFRA_WEBHOOK_ROUTES``), YAML::

       repos:
         acme/infra:                     # only listed repositories are served when a routes file is given
           targets: [prod, staging]       # allowed targets (default: any valid name)
           plan: "ops/plans/infra-scale/{target}/plan.yaml"   # plan path template (default as above)

Target names must match ``[a-z0-9][a-z0-9-]{0,62}`` in full; anything else is ignored. Listing the PR's files
needs GitHub settings (``GITHUB_TOKEN`` or ``GITHUB_TOKEN_BLOCK``, ``GITHUB_API_URL``) in the bridge's
environment; without them every PR event is ignored (the worker's gate would refuse a plan its PR does not change
anyway), and a PR whose files GitHub does not list answers ``503`` (GitHub may redeliver).

The event (matched by the deployments' triggers in ``prefect.yaml``)::

    event:    github.pull_request.labeled
    resource: {"prefect.resource.id": "github.pr.<owner>/<repo>/<number>", "github.label": <label>,
               "github.target": <target>, "github.repository": <owner/repo>}
    payload:  {"number", "repository", "plan", "target", "label", "sender", "head_sha", "head_ref", "delivery"}

Plan on PR: a PR changing plans that is ``opened``, ``synchronize``d (new commits) or ``reopened`` emits
``github.pull_request.plan`` per plan (same resource without ``github.label``; payload as above with ``action``
instead of ``label``), which starts ``infra-plan`` for its target.

``head_sha`` is the PR head the ``labeled`` event carried (``pull_request.head.sha``); the triggers pass it to the
flow run as its ``head_sha`` parameter, so the gate refuses a head that moved after the label was added.

Replays: ``X-GitHub-Delivery`` is not signed, so replay protection keys on SHA-256 of the signature and the signed
body: the same body re-sent under any delivery id is a replay. Digests are kept in a small SQLite file
(``--state`` / ``INFRA_WEBHOOK_STATE``, default ``~/.infra-orchestrator/webhook-deliveries.sqlite3``), newest
10 000 only, so replays are dropped across restarts with bounded storage. The Prefect event id derives from the
same digest, so Prefect too sees a re-sent body as the same event.

Limits (flag, env var, default): ``--read-timeout`` ``INFRA_WEBHOOK_READ_TIMEOUT`` 10 s for a request's head and
again for its body, and for an idle keep-alive connection (GitHub itself gives up after 10 s);
``--max-body-bytes`` ``INFRA_WEBHOOK_MAX_BODY_BYTES`` 5 MiB (at most GitHub's own 25 MiB cap; ``labeled``
payloads are tens of KiB); ``--max-connections`` ``INFRA_WEBHOOK_MAX_CONNECTIONS`` 100 open connections, beyond
which requests get ``503``.

Secret: ``GITHUB_WEBHOOK_SECRET`` or, when empty, the Prefect Secret block named by
``GITHUB_WEBHOOK_SECRET_BLOCK``. It is never logged or echoed. Prefect settings (``PREFECT_API_URL``,
``PREFECT_API_KEY``) come from the environment as for any Prefect client.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from core.conventions import DEFAULT_PLANS_DIR, LABELS, PLAN_FILE, REPOSITORY_PATTERN
from integrations.command_help import CommandParser, Usage, documented

log = logging.getLogger("infra.webhook")

TRIGGER_LABELS = tuple(LABELS.values())
EVENT_NAME = "github.pull_request.labeled"
PLAN_EVENT_NAME = "github.pull_request.plan"
"""Emitted per plan a PR changes when it opens, gets new commits or reopens: starts infra-plan."""
PLAN_ACTIONS = ("opened", "synchronize", "reopened")
GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024
DEFAULT_MAX_BODY = 5 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 100
MAX_REMEMBERED = 10_000
DEFAULT_PLAN_TEMPLATE = f"{DEFAULT_PLANS_DIR}/{{target}}/{PLAN_FILE}"
TARGET_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
DEFAULT_STATE = Path.home() / ".infra-orchestrator" / "webhook-deliveries.sqlite3"

# (event name, resource, payload, event id)
Emitter = Callable[[str, dict[str, str], dict[str, Any], uuid.UUID], None]


class ConfigError(ValueError):
    """Bad configuration, shown as the one line ``error: <where>: <field>: <message>``."""

    def __init__(self, where: str, name: str, message: str) -> None:
        super().__init__(f"{where}: {name}: {message}")


# --------------------------------------------------------------------------- signature
def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only for a well-formed ``sha256=<hex>`` header equal to HMAC-SHA256(secret, body)."""
    if not header or not secret:
        return False
    expected = signature_for(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))


def replay_key(signature: str, body: bytes) -> str:
    """What identifies a delivery: the signed bytes themselves, never the unsigned ``X-GitHub-Delivery``."""
    return hashlib.sha256(signature.strip().encode("utf-8", "replace") + b"\n" + body).hexdigest()


# --------------------------------------------------------------------------- replay log
class ReplayLog:
    """Replay keys already handled, in SQLite (a file for durability, ``:memory:`` for tests); newest ``limit``."""

    def __init__(self, path: str | Path = ":memory:", limit: int = MAX_REMEMBERED) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS handled_bodies (digest TEXT PRIMARY KEY, seen REAL NOT NULL)")
        self._lock = threading.Lock()
        self._limit = limit

    def claim(self, key: str) -> bool:
        """Record the key; False when it was already there (a replay)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO handled_bodies (digest, seen) VALUES (?, ?)", (key, time.time())
            )
            if cur.rowcount == 0:
                return False
            self._db.execute(
                "DELETE FROM handled_bodies WHERE rowid <= (SELECT MAX(rowid) FROM handled_bodies) - ?", (self._limit,)
            )
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM handled_bodies WHERE digest = ?", (key,))

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM handled_bodies").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- routing
@dataclass(frozen=True)
class RepoRoute:
    targets: tuple[str, ...] | None = None
    plan: str = DEFAULT_PLAN_TEMPLATE


def _repository_name(where: str, name: str, value: object) -> str:
    text = str(value).strip()
    if not REPOSITORY_PATTERN.fullmatch(text):
        raise ConfigError(where, name, f"{text!r} is not owner/name")
    return text


@dataclass(frozen=True)
class Routes:
    """The repositories this bridge serves (keys, lower-cased) and how each routes a PR."""

    repos: Mapping[str, RepoRoute]

    @classmethod
    def for_repositories(cls, names: Sequence[str]) -> Routes:
        return cls({name.lower(): RepoRoute() for name in names})

    @classmethod
    def load(cls, path: str | Path) -> Routes:
        import yaml

        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ConfigError(where, "(file)", f"cannot be read as YAML ({type(error).__name__})") from None
        repos_spec = data.get("repos") if isinstance(data, dict) else None
        if not isinstance(repos_spec, dict) or not repos_spec:
            raise ConfigError(where, "repos", "must map at least one owner/name to its routing")
        repos: dict[str, RepoRoute] = {}
        for name, spec in repos_spec.items():
            field_name = f"repos.{name}"
            repository = _repository_name(where, field_name, name)
            spec = spec if spec is not None else {}
            if not isinstance(spec, dict):
                raise ConfigError(where, field_name, "must be a mapping")
            targets = spec.get("targets")
            if targets is not None and not (
                isinstance(targets, list) and all(isinstance(t, str) and TARGET_RE.fullmatch(t) for t in targets)
            ):
                raise ConfigError(where, f"{field_name}.targets", "must be a list of target names")
            repos[repository.lower()] = RepoRoute(
                targets=tuple(targets) if targets is not None else None,
                plan=str(spec.get("plan", DEFAULT_PLAN_TEMPLATE)),
            )
        return cls(repos)

    @classmethod
    def from_config(cls, routes_file: str | None, env: Mapping[str, str]) -> Routes:
        """The routes file, else ``INFRA_REPOSITORIES``, else ``GH_OWNER``/``GH_REPO``: never "any repository"."""
        listed = env.get("INFRA_REPOSITORIES", "").strip()
        if routes_file and listed:
            raise ConfigError("environment", "INFRA_REPOSITORIES", "set it or a routes file, not both")
        if routes_file:
            return cls.load(routes_file)
        if listed:
            names = [part for part in (p.strip() for p in listed.split(",")) if part]
            return cls.for_repositories([_repository_name("environment", "INFRA_REPOSITORIES", n) for n in names])
        owner, repo = env.get("GH_OWNER", "").strip(), env.get("GH_REPO", "").strip()
        if owner and repo:
            return cls.for_repositories([_repository_name("environment", "GH_OWNER/GH_REPO", f"{owner}/{repo}")])
        raise ConfigError(
            "environment", "GH_OWNER", "set GH_OWNER and GH_REPO, INFRA_REPOSITORIES or a routes file "
            "(the bridge serves only repositories it is configured for)"
        )  # fmt: skip

    def served(self) -> list[str]:
        return sorted(self.repos)

    def plans(self, repository: str, files: Sequence[str]) -> list[tuple[str, str]] | str:
        """(target, plan path) of every plan file among `files` (the PR's changed paths), or the reason there is
        none. ``repository`` must be served."""
        spec = self.repos[repository.lower()]
        before, _, after = spec.plan.partition("{target}")
        found: list[tuple[str, str]] = []
        for path in files:
            if not (path.startswith(before) and path.endswith(after) and len(path) > len(before) + len(after)):
                continue
            target = path[len(before) : len(path) - len(after)]
            if TARGET_RE.fullmatch(target) and (spec.targets is None or target in spec.targets):
                found.append((target, path))
        if not found:
            return f"the PR changes no plan file ({spec.plan})"
        return sorted(set(found))


# --------------------------------------------------------------------------- decision (pure)
Event = tuple[str, dict[str, str], dict[str, Any]]
FilesOf = Callable[[str, int], list[str]]
"""The PR's changed paths (`repository`, `number`), as GitHub lists them."""


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    events: list[Event] = field(default_factory=list)

    @property
    def event(self) -> Event | None:
        return self.events[0] if self.events else None


def _ignored(reason: str) -> Outcome:
    return Outcome(202, {"status": "ignored", "reason": reason})


def _bad_request(reason: str) -> Outcome:
    return Outcome(400, {"status": "bad request", "reason": reason})


def decide(headers: Mapping[str, str], body: bytes, secret: bytes, routes: Routes,
           files_of: FilesOf | None = None) -> Outcome:
    """Everything but the replay log and the emission: signature, repository, event filter, the plans the PR
    changes (`files_of`; None: GitHub cannot be asked, nothing is routed), one event per plan."""
    if not signature_ok(secret, body, headers.get("x-hub-signature-256")):
        return Outcome(401, {"status": "unauthorized", "reason": "missing or wrong X-Hub-Signature-256"})
    kind = headers.get("x-github-event", "")
    if kind != "pull_request":
        return _ignored(f"event {kind or '(none)'} is not handled")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _bad_request("body is not JSON")
    if not isinstance(data, dict):
        return _bad_request("body is not a JSON object")
    repository = (data.get("repository") or {}).get("full_name")
    if not isinstance(repository, str) or not REPOSITORY_PATTERN.fullmatch(repository):
        return _bad_request("payload lacks repository.full_name")
    if repository.lower() not in routes.repos:
        reason = f"repository {repository} is not served by this bridge (serves: {', '.join(routes.served())})"
        return Outcome(403, {"status": "refused", "reason": reason})
    action = data.get("action")
    if action not in ("labeled", *PLAN_ACTIONS):
        return _ignored(f"action {action!r} is not handled")
    label = (data.get("label") or {}).get("name") if action == "labeled" else None
    if action == "labeled" and label not in TRIGGER_LABELS:
        return _ignored(f"label {label!r} is not ours")
    pr = data.get("pull_request") or {}
    number = data.get("number", pr.get("number"))
    head = pr.get("head") or {}
    head_ref, head_sha = head.get("ref"), head.get("sha")
    if type(number) is not int or not 0 < number < 2**31:
        return _bad_request("payload lacks number")
    if not isinstance(head_sha, str) or not SHA_RE.fullmatch(head_sha):
        return _bad_request("payload lacks pull_request.head.sha")
    if not isinstance(head_ref, str):
        return _ignored("pull request has no head ref")
    if files_of is None:
        return _ignored("the bridge has no GitHub settings to list the PR's files (GITHUB_TOKEN), so it cannot "
                        "tell which plans the PR changes")
    try:
        files = files_of(repository, number)
    except Exception as error:
        log.warning("could not list the files of PR #%s (%s)", number, type(error).__name__)
        return Outcome(503, {"status": "error", "reason": f"could not list the files of PR #{number}"})
    routed = routes.plans(repository, files)
    if isinstance(routed, str):
        return _ignored(routed)
    if action in PLAN_ACTIONS:
        outcomes = [_plan_outcome(data, headers, repository, number, head_sha, head_ref, target, plan)
                    for target, plan in routed]
        return _together(outcomes)
    return _together([_labeled_outcome(data, headers, repository, number, head_sha, head_ref, target, plan,
                                       str(label)) for target, plan in routed])


def _together(outcomes: list[Outcome]) -> Outcome:
    """One answer for the events of several plans."""
    if len(outcomes) == 1:
        return outcomes[0]
    return Outcome(200, {"status": "emitted", "runs": [outcome.body for outcome in outcomes]},
                   [event for outcome in outcomes for event in outcome.events])


def _labeled_outcome(data: Mapping[str, Any], headers: Mapping[str, str], repository: str, number: int,
                     head_sha: str, head_ref: str, target: str, plan: str, label: str) -> Outcome:
    """The labeled event for one plan the PR changes."""
    resource = {
        "prefect.resource.id": f"github.pr.{repository}/{number}",
        "prefect.resource.name": f"{repository}#{number}",
        "github.label": str(label),
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
    return Outcome(200, summary, [(EVENT_NAME, resource, payload)])


def _plan_outcome(data: Mapping[str, Any], headers: Mapping[str, str], repository: str, number: int, head_sha: str,
                  head_ref: str, target: str, plan: str) -> Outcome:
    """The infra-plan event for a routed PR that opened, got new commits or reopened."""
    resource: dict[str, str] = {
        "prefect.resource.id": f"github.pr.{repository}/{number}",
        "prefect.resource.name": f"{repository}#{number}",
        "github.target": target,
        "github.repository": repository,
    }
    payload: dict[str, Any] = {
        "number": number,
        "repository": repository,
        "plan": plan,
        "target": target,
        "action": data.get("action"),
        "sender": (data.get("sender") or {}).get("login"),
        "head_sha": head_sha,
        "head_ref": head_ref,
        "delivery": headers.get("x-github-delivery"),
    }
    summary = {"status": "emitted", "event": PLAN_EVENT_NAME, "target": target, "plan": plan, "pr": number}
    return Outcome(200, summary, [(PLAN_EVENT_NAME, resource, payload)])


def github_files(repository: str, number: int) -> list[str]:
    """The PR's changed paths, asked of GitHub with the environment's settings (GITHUB_TOKEN...)."""
    from integrations.github import GitHubSettings, changed_files

    return changed_files(GitHubSettings.from_env(), repository, number)


def prefect_emitter(event: str, resource: dict[str, str], payload: dict[str, Any], event_id: uuid.UUID) -> None:
    """Hand the event to Prefect's events worker."""
    from prefect.events import emit_event

    if emit_event(event=event, resource=resource, payload=payload, id=event_id) is None:
        raise RuntimeError("Prefect did not emit the event (is PREFECT_API_URL set?)")


def warm_up_prefect() -> None:
    """Import Prefect and start its events worker before serving, so the first delivery answers quickly too."""
    from prefect.events.worker import EventsWorker

    EventsWorker.instance()


@dataclass
class Bridge:
    secret: bytes = field(repr=False)
    routes: Routes
    replays: ReplayLog
    emit: Emitter = prefect_emitter
    files_of: FilesOf | None = None
    """The PR's changed paths, from which the plans to run are chosen; None (no GitHub settings): none are."""
    started: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=dict)
    _counts_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # handle() runs in threads

    def handle(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        outcome = decide(headers, body, self.secret, self.routes, self.files_of)
        if outcome.events:
            delivery = headers.get("x-github-delivery", "")
            key = replay_key(headers.get("x-hub-signature-256", ""), body)
            if not delivery or len(delivery) > 128:
                outcome = _bad_request("missing or oversized X-GitHub-Delivery")
            elif not self.replays.claim(key):
                outcome = _ignored(f"this signed body was already handled (delivery {delivery} is a replay)")
            else:
                try:
                    # each event id derives from the replay key (and its plan), so Prefect too sees a re-sent body
                    # as the same events
                    for name, resource, payload in outcome.events:
                        suffix = "" if len(outcome.events) == 1 else f":{payload['plan']}"
                        self.emit(name, resource, payload,
                                  uuid.uuid5(uuid.NAMESPACE_URL, f"github-webhook-body:{key}{suffix}"))
                except Exception as error:  # emission failed: let GitHub's redelivery try again
                    self.replays.release(key)
                    log.error("emitting the Prefect event failed: %s", type(error).__name__)
                    outcome = Outcome(503, {"status": "error", "reason": "could not emit the Prefect event"})
        status = str(outcome.body.get("status"))
        with self._counts_lock:
            self.counts[status] = self.counts.get(status, 0) + 1
        return outcome


# --------------------------------------------------------------------------- HTTP (uvicorn + Starlette)
@dataclass(frozen=True)
class Limits:
    read_timeout_s: float = DEFAULT_READ_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_connections: int = DEFAULT_MAX_CONNECTIONS


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limits: Limits) -> bytes:
    """The whole body within the read timeout and the size limit (``TimeoutError`` / ``BodyTooLarge``)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not re.fullmatch(r"[0-9]{1,12}", declared) or int(declared) > limits.max_body_bytes):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    with anyio.fail_after(limits.read_timeout_s):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def _closing(status: int, reason: str) -> JSONResponse:
    """An answer sent before the body was read whole: the connection cannot be reused, so it is closed."""
    return JSONResponse({"status": "bad request", "reason": reason}, status, headers={"Connection": "close"})


def create_app(bridge: Bridge, limits: Limits) -> Starlette:
    async def webhook(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, limits)
        except BodyTooLarge:
            log.warning("body over %d bytes -> 413", limits.max_body_bytes)
            return _closing(413, f"body over {limits.max_body_bytes} bytes")
        except TimeoutError:
            log.warning("body not received within %.1f s -> 408", limits.read_timeout_s)
            return _closing(408, f"body not received within {limits.read_timeout_s:g} s")
        headers = {key.lower(): value for key, value in request.headers.items()}
        outcome = await anyio.to_thread.run_sync(bridge.handle, headers, body)
        log.log(
            logging.WARNING if outcome.status == 403 else logging.INFO,
            "delivery=%s event=%s -> %d %s",
            headers.get("x-github-delivery", "-")[:64],
            headers.get("x-github-event", "-")[:40],
            outcome.status,
            outcome.body.get("reason", ""),
        )
        return JSONResponse(outcome.body, outcome.status)

    async def health(request: Request) -> JSONResponse:
        replays_remembered = await anyio.to_thread.run_sync(len, bridge.replays)
        return JSONResponse(
            {
                "ok": True,
                "uptime_s": round(time.time() - bridge.started, 1),
                "replays_remembered": replays_remembered,
                "repositories": bridge.routes.served(),
                "counts": dict(bridge.counts),
            }
        )

    return Starlette(
        routes=[
            Route(path, webhook, methods=["POST"]) for path in ("/", "/webhook", "/github")
        ] + [Route(path, health, methods=["GET"]) for path in ("/healthz", "/health")]
    )  # fmt: skip


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head.

    uvicorn arms its keep-alive timer only after a response and cancels it on any byte received, so a client that
    connects and stays silent, or trickles its headers, would otherwise hold the connection forever."""

    head_timeout_s = DEFAULT_READ_TIMEOUT
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_deadline_passed)

    def _head_deadline_passed(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # still no complete request head
            self.transport.close()


def server_config(app: Starlette, limits: Limits, host: str = "127.0.0.1", port: int = 0) -> uvicorn.Config:
    protocol = type("BridgeHTTPProtocol", (HeadDeadlineProtocol,), {"head_timeout_s": limits.read_timeout_s})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        ws="none",
        lifespan="off",
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=max(1, math.ceil(limits.read_timeout_s)),
        timeout_graceful_shutdown=5,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


# --------------------------------------------------------------------------- command line
def load_secret(env: Mapping[str, str] = os.environ) -> bytes:
    """The webhook secret from ``GITHUB_WEBHOOK_SECRET`` or the Prefect Secret block ``GITHUB_WEBHOOK_SECRET_BLOCK``."""
    value = env.get("GITHUB_WEBHOOK_SECRET", "")
    if not value and env.get("GITHUB_WEBHOOK_SECRET_BLOCK"):
        from prefect.blocks.system import Secret

        block: Any = Secret.load(env["GITHUB_WEBHOOK_SECRET_BLOCK"], _sync=True)  # type: ignore[call-arg]
        value = str(block.get())
    if not value:
        raise ConfigError("environment", "GITHUB_WEBHOOK_SECRET", "set it or GITHUB_WEBHOOK_SECRET_BLOCK")
    return value.encode()


def _number(flag: str, text: str, low: float, high: float, integer: bool) -> float:
    """``text`` as a plain ASCII decimal within [low, high]."""
    pattern = r"[0-9]{1,9}" if integer else r"[0-9]{1,9}(\.[0-9]{1,6})?"
    if not re.fullmatch(pattern, text.strip()) or not low <= float(text) <= high:
        bounds = f"an integer from {low:.0f} to {high:.0f}" if integer else f"a number from {low:g} to {high:g}"
        raise ConfigError("command line", flag, f"must be {bounds}, not {text!r}")
    return float(text)


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        read_timeout_s=_number("--read-timeout", args.read_timeout, 0.1, 300, integer=False),
        max_body_bytes=int(_number("--max-body-bytes", args.max_body_bytes, 1024, GITHUB_MAX_PAYLOAD, integer=True)),
        max_connections=int(_number("--max-connections", args.max_connections, 2, 100_000, integer=True)),
    )


USAGE = Usage(
    examples=("infra-webhook --host 0.0.0.0 --port 8787 --state /var/lib/infra-webhook/deliveries.sqlite3",
              "infra-webhook --routes routes.yaml    # targets per repository, plan path template"),
    environment=(("PREFECT_API_URL", "the Prefect server the events go to (required)"),
                 ("GITHUB_WEBHOOK_SECRET", "the webhook's secret"),
                 ("GITHUB_WEBHOOK_SECRET_BLOCK", "a Prefect Secret block holding it, instead"),
                 ("GH_OWNER, GH_REPO", "the repository served (or INFRA_REPOSITORIES=owner/a,owner/b, or --routes)"),
                 ("INFRA_WEBHOOK_HOST, _PORT, _STATE, _ROUTES", "defaults of --host, --port, --state, --routes"),
                 ("INFRA_WEBHOOK_READ_TIMEOUT, _MAX_BODY_BYTES, _MAX_CONNECTIONS", "defaults of the limit flags"),
                 ("INFRA_WEBHOOK_LOG_LEVEL", "log level (default INFO)")),
    exit_codes=(("0", "stopped by SIGTERM or SIGINT"),
                ("2", "bad configuration: a flag, the routes file, the secret, no repository or no PREFECT_API_URL"),
                ("3", "could not listen on --host/--port (uvicorn's startup failure)")),
)


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    parser = CommandParser(prog="infra-webhook", description="GitHub webhook -> Prefect event bridge.")
    documented(parser, USAGE)
    parser.add_argument("--host", default=env.get("INFRA_WEBHOOK_HOST", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", default=env.get("INFRA_WEBHOOK_PORT", "8787"), help="TCP port (default 8787)")
    parser.add_argument(
        "--state",
        default=env.get("INFRA_WEBHOOK_STATE", str(DEFAULT_STATE)),
        help="SQLite file remembering handled bodies (':memory:' for none)",
    )
    parser.add_argument(
        "--routes", default=env.get("INFRA_WEBHOOK_ROUTES") or None, help="optional routes YAML (see module doc)"
    )
    parser.add_argument(
        "--read-timeout",
        default=env.get("INFRA_WEBHOOK_READ_TIMEOUT", str(DEFAULT_READ_TIMEOUT)),
        help="seconds allowed for a request's head, again for its body, and for an idle connection",
    )
    parser.add_argument("--max-body-bytes", default=env.get("INFRA_WEBHOOK_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY)),
                        help="largest request body accepted, in bytes (larger ones get 413)")
    parser.add_argument(
        "--max-connections",
        default=env.get("INFRA_WEBHOOK_MAX_CONNECTIONS", str(DEFAULT_MAX_CONNECTIONS)),
        help="open connections beyond which requests get 503",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=env.get("INFRA_WEBHOOK_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        port = int(_number("--port", args.port, 0, 65535, integer=True))
        limits = limits_from(args)
        routes = Routes.from_config(args.routes, env)
        secret = load_secret(env)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not env.get("PREFECT_API_URL"):
        print("error: environment: PREFECT_API_URL: is required (the bridge emits events to a Prefect server)",
              file=sys.stderr)  # fmt: skip
        return 2
    warm_up_prefect()
    can_list_files = bool(os.environ.get("GITHUB_TOKEN") or os.environ.get("GITHUB_TOKEN_BLOCK"))
    bridge = Bridge(secret=secret, routes=routes, replays=ReplayLog(args.state),
                    files_of=github_files if can_list_files else None)
    server = uvicorn.Server(server_config(create_app(bridge, limits), limits, args.host, port))
    log.info(
        "infra-webhook listening on http://%s:%d for %s (read timeout %g s, body limit %d bytes, %d connections)",
        args.host, port, ", ".join(routes.served()), limits.read_timeout_s, limits.max_body_bytes,
        limits.max_connections,
    )  # fmt: skip
    try:
        server.run()  # uvicorn stops gracefully on SIGTERM / SIGINT
    finally:
        bridge.replays.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
