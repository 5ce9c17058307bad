"""What a delivery asks for (pure): its answer and the Prefect events it starts, before the replay log and the
emission. Each step returns the next step's input or the delivery's final answer."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.conventions import LABELS, REPOSITORY_PATTERN
from deployments.webhook.routes import Routes
from deployments.webhook.signature import signature_ok

log = logging.getLogger("infra.webhook")

TRIGGER_LABELS = tuple(LABELS.values())
EVENT_NAME = "github.pull_request.labeled"
PLAN_EVENT_NAME = "github.pull_request.plan"
"""Emitted per plan a PR changes when it opens, gets new commits or reopens: starts infra-plan."""
PLAN_ACTIONS = ("opened", "synchronize", "reopened")
SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

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


@dataclass(frozen=True)
class PullRequestEvent:
    """A served repository's ``pull_request`` delivery whose fields routing and the events rely on."""

    data: Mapping[str, Any]
    repository: str
    action: str
    label: str | None
    number: int
    head_sha: str
    head_ref: str


def ignored(reason: str) -> Outcome:
    return Outcome(202, {"status": "ignored", "reason": reason})


def bad_request(reason: str) -> Outcome:
    return Outcome(400, {"status": "bad request", "reason": reason})


def decide(headers: Mapping[str, str], body: bytes, secret: bytes, routes: Routes,
           files_of: FilesOf | None = None) -> Outcome:
    """Everything but the replay log and the emission: signature, repository, event filter, the plans the PR
    changes (`files_of`; None: GitHub cannot be asked, nothing is routed), one event per plan."""
    if not signature_ok(secret, body, headers.get("x-hub-signature-256")):
        return Outcome(401, {"status": "unauthorized", "reason": "missing or wrong X-Hub-Signature-256"})
    kind = headers.get("x-github-event", "")
    if kind != "pull_request":
        return ignored(f"event {kind or '(none)'} is not handled")
    served = _served_payload(body, routes)
    if isinstance(served, Outcome):
        return served
    event = _pull_request_event(*served)
    if isinstance(event, Outcome):
        return event
    return _route(event, headers, routes, files_of)


def _served_payload(body: bytes, routes: Routes) -> tuple[dict[str, Any], str] | Outcome:
    """The JSON object and its repository, when that repository is one this bridge serves."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return bad_request("body is not JSON")
    if not isinstance(data, dict):
        return bad_request("body is not a JSON object")
    repository = (data.get("repository") or {}).get("full_name")
    if not isinstance(repository, str) or not REPOSITORY_PATTERN.fullmatch(repository):
        return bad_request("payload lacks repository.full_name")
    if repository.lower() not in routes.repos:
        reason = f"repository {repository} is not served by this bridge (serves: {', '.join(routes.served())})"
        return Outcome(403, {"status": "refused", "reason": reason})
    return data, repository


def _pull_request_event(data: dict[str, Any], repository: str) -> PullRequestEvent | Outcome:
    """The PR's action, label, number and head, when the action is one that starts a run."""
    action = data.get("action")
    if action not in ("labeled", *PLAN_ACTIONS):
        return ignored(f"action {action!r} is not handled")
    label = (data.get("label") or {}).get("name") if action == "labeled" else None
    if action == "labeled" and label not in TRIGGER_LABELS:
        return ignored(f"label {label!r} is not ours")
    pr = data.get("pull_request") or {}
    number = data.get("number", pr.get("number"))
    head = pr.get("head") or {}
    head_ref, head_sha = head.get("ref"), head.get("sha")
    if type(number) is not int or not 0 < number < 2**31:
        return bad_request("payload lacks number")
    if not isinstance(head_sha, str) or not SHA_RE.fullmatch(head_sha):
        return bad_request("payload lacks pull_request.head.sha")
    if not isinstance(head_ref, str):
        return ignored("pull request has no head ref")
    return PullRequestEvent(data, repository, str(action), label, number, head_sha, head_ref)


def _route(event: PullRequestEvent, headers: Mapping[str, str], routes: Routes,
           files_of: FilesOf | None) -> Outcome:
    """One event per plan file the PR changes, as GitHub lists its files."""
    if files_of is None:
        return ignored("the bridge has no GitHub settings to list the PR's files (GITHUB_TOKEN), so it cannot "
                        "tell which plans the PR changes")
    try:
        files = files_of(event.repository, event.number)
    except Exception as error:
        log.warning("could not list the files of PR #%s (%s)", event.number, type(error).__name__)
        return Outcome(503, {"status": "error", "reason": f"could not list the files of PR #{event.number}"})
    routed = routes.plans(event.repository, files)
    if isinstance(routed, str):
        return ignored(routed)
    return _together([_run_outcome(event, headers, target, plan) for target, plan in routed])


def _together(outcomes: list[Outcome]) -> Outcome:
    """One answer for the events of several plans."""
    if len(outcomes) == 1:
        return outcomes[0]
    return Outcome(200, {"status": "emitted", "runs": [outcome.body for outcome in outcomes]},
                   [event for outcome in outcomes for event in outcome.events])


def _run_outcome(event: PullRequestEvent, headers: Mapping[str, str], target: str, plan: str) -> Outcome:
    """The event for one plan the PR changes: ``labeled`` (apply or rollback) carries its label; ``opened``,
    ``synchronize`` and ``reopened`` (infra-plan) carry their action."""
    labeled = event.action == "labeled"
    name = EVENT_NAME if labeled else PLAN_EVENT_NAME
    repository, number = event.repository, event.number
    resource = {
        "prefect.resource.id": f"github.pr.{repository}/{number}",
        "prefect.resource.name": f"{repository}#{number}",
        **({"github.label": str(event.label)} if labeled else {}),
        "github.target": target,
        "github.repository": repository,
    }
    trigger = {"label": str(event.label)} if labeled else {"action": event.action}
    payload = {
        "number": number,
        "repository": repository,
        "plan": plan,
        "target": target,
        **trigger,
        "sender": (event.data.get("sender") or {}).get("login"),
        "head_sha": event.head_sha,
        "head_ref": event.head_ref,
        "delivery": headers.get("x-github-delivery"),
    }
    summary = {"status": "emitted", "event": name, "target": target, "plan": plan, "pr": number,
               **({"label": str(event.label)} if labeled else {})}
    return Outcome(200, summary, [(name, resource, payload)])
