"""Fault injection, deterministic under a seed.

A rule matches requests by method, path regex, kubectl command and field manager and, when it fires, adds
latency, answers a status (with an optional ``Retry-After``), drops the connection, or serves the request and holds
its answer back (``answer_late_s``: the write commits, the client times out first, as when an API server answers
after a client's deadline). It fires for the next ``count`` matching requests, or for a ``fraction`` of them
drawn from a seeded RNG (both: a fraction, at most count times). Rules are checked in the order they were added;
the first one that fires wins. ``/_sandbox/*`` control requests are never faulted.

``command`` targets one kubectl command the way real kubectl identifies itself: every request carries a
``Kubectl-Command`` header (``kubectl scale``, ``kubectl annotate``, ``kubectl rollout status``). The rule matches
that header exactly or as its leading words (``kubectl rollout`` matches ``kubectl rollout status``, ``kubectl a``
matches nothing), so a fault meant for one step's write is not consumed by another command on the same path.
``field_manager`` matches a write's ``fieldManager`` query parameter exactly (``kubectl patch
--field-manager=NAME``): one command's writes made for different purposes, told apart as the API server's
managedFields tell them.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultRule:
    """One rule. ``status`` None with ``latency_s`` > 0 only delays the real answer."""

    method: str | None = None
    path_regex: str | None = None
    command: str | None = None
    field_manager: str | None = None
    status: int | None = None
    retry_after: float | None = None
    latency_s: float = 0.0
    drop: bool = False
    answer_late_s: float = 0.0
    count: int | None = None
    fraction: float | None = None
    message: str | None = None
    id: int = 0
    fired: int = 0
    _re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_re", None)
        return d


@dataclass(frozen=True)
class Fault:
    """What to do to one request."""

    rule_id: int
    status: int | None
    retry_after: float | None
    latency_s: float
    drop: bool
    message: str | None
    answer_late_s: float = 0.0


_FIELDS = (
    "method",
    "path_regex",
    "command",
    "field_manager",
    "status",
    "retry_after",
    "latency_s",
    "drop",
    "answer_late_s",
    "count",
    "fraction",
    "message",
)


def _same_command(wanted: str, header: str) -> bool:
    """``header`` is the ``wanted`` command, or it with more words (a subcommand)."""
    return header == wanted or header.startswith(wanted + " ")


class FaultInjector:
    """The rule list of one server; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)

    def seed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def add(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        latency_s: float = 0.0,
        drop: bool = False,
        count: int | None = None,
        fraction: float | None = None,
        message: str | None = None,
        command: str | None = None,
        answer_late_s: float = 0.0,
        field_manager: str | None = None,
    ) -> FaultRule:
        """Add a rule; returns it (``.id`` to remove it, ``.fired`` to see how often it fired)."""
        if status is None and not drop and latency_s <= 0 and answer_late_s <= 0:
            raise ValueError("a fault needs a status, drop=True, latency_s > 0 or answer_late_s > 0")
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError(f"bad status {status!r}")
        if fraction is not None and not 0.0 <= float(fraction) <= 1.0:
            raise ValueError("fraction must be within [0, 1]")
        if count is not None and int(count) < 0:
            raise ValueError("count must be >= 0")
        if command is not None and not str(command).startswith("kubectl "):
            raise ValueError(f'command must name a kubectl command ("kubectl scale"), not {command!r}')
        rule = FaultRule(
            method=method.upper() if method else None,
            path_regex=path_regex,
            command=" ".join(str(command).split()) if command is not None else None,
            field_manager=field_manager,
            status=int(status) if status is not None else None,
            retry_after=retry_after,
            latency_s=float(latency_s),
            drop=bool(drop),
            answer_late_s=float(answer_late_s),
            count=int(count) if count is not None else None,
            fraction=float(fraction) if fraction is not None else None,
            message=message,
        )
        rule._re = re.compile(path_regex) if path_regex else None
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def add_dict(self, spec: dict[str, Any]) -> FaultRule:
        """Add from a JSON body (the HTTP control endpoint); unknown keys are errors."""
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return self.add(**spec)

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def match(self, method: str, path: str, command: str = "", field_manager: str = "") -> Fault | None:
        """Decide (and record) whether a request is faulted; ``command`` is its ``Kubectl-Command`` header,
        ``field_manager`` its ``fieldManager`` query parameter."""
        with self._lock:
            for rule in self._rules:
                if rule.method and rule.method != method.upper():
                    continue
                if rule.command is not None and not _same_command(rule.command, command):
                    continue
                if rule.field_manager is not None and rule.field_manager != field_manager:
                    continue
                if rule._re is not None and not rule._re.search(path):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.fraction is not None and self._rng.random() >= rule.fraction:
                    continue
                rule.fired += 1
                return Fault(rule.id, rule.status, rule.retry_after, rule.latency_s, rule.drop, rule.message,
                             rule.answer_late_s)
        return None
