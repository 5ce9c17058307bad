"""A delivery's whole handling: the decision, then the replay log and the emission of its Prefect events."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployments.webhook.events import FilesOf, Outcome, bad_request, decide, ignored
from deployments.webhook.routes import Routes
from deployments.webhook.signature import ReplayLog, replay_key

log = logging.getLogger("infra.webhook")

# (event name, resource, payload, event id)
Emitter = Callable[[str, dict[str, str], dict[str, Any], uuid.UUID], None]


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
            outcome = self._emit_once(headers, body, outcome)
        status = str(outcome.body.get("status"))
        with self._counts_lock:
            self.counts[status] = self.counts.get(status, 0) + 1
        return outcome

    def _emit_once(self, headers: Mapping[str, str], body: bytes, outcome: Outcome) -> Outcome:
        """Emit the decided events unless this signed body was handled before; released again when emitting fails."""
        delivery = headers.get("x-github-delivery", "")
        key = replay_key(headers.get("x-hub-signature-256", ""), body)
        if not delivery or len(delivery) > 128:
            return bad_request("missing or oversized X-GitHub-Delivery")
        if not self.replays.claim(key):
            return ignored(f"this signed body was already handled (delivery {delivery} is a replay)")
        try:
            # each event id derives from the replay key (and its plan), so Prefect too sees a re-sent body as the
            # same events
            for name, resource, payload in outcome.events:
                suffix = "" if len(outcome.events) == 1 else f":{payload['plan']}"
                self.emit(name, resource, payload, uuid.uuid5(uuid.NAMESPACE_URL, f"github-webhook-body:{key}{suffix}"))
        except Exception as error:  # emission failed: let GitHub's redelivery try again
            self.replays.release(key)
            log.error("emitting the Prefect event failed: %s", type(error).__name__)
            return Outcome(503, {"status": "error", "reason": "could not emit the Prefect event"})
        return outcome
