"""Label and field selectors, as ``kubectl rollout history`` and ``rollout status`` send them.

Parsing errors raise :class:`~sandbox.kube.errors.ApiError` (400) so a malformed selector never becomes a
server error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    terms: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"unable to parse requirement: unbalanced parenthesis in {text!r}")
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise bad_request(f"unable to parse requirement: unbalanced parenthesis in {text!r}")
    terms.append(cur)
    return [t for t in terms if t.strip()]


LabelCheck = Callable[[Mapping[str, str]], bool]


def _label_eq(key: str, value: str, equal: bool) -> LabelCheck:
    return lambda labels: (labels.get(key) == value) == equal


def _label_in(key: str, values: frozenset[str], inside: bool) -> LabelCheck:
    return lambda labels: (labels.get(key) in values) == inside


def _label_exists(key: str, exists: bool) -> LabelCheck:
    return lambda labels: (key in labels) == exists


def _field_eq(path: str, value: str, equal: bool) -> Predicate:
    return lambda obj: ((_field_value(obj, path) or "") == value) == equal


def label_selector(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """Compile a label selector string into a predicate over a labels mapping."""
    if not text:
        return lambda labels: True
    checks: list[LabelCheck] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if m:
            key, op, val = m.groups()
            checks.append(_label_eq(key, val, op != "!="))
            continue
        m = _SET_RE.match(term)
        if not m:
            raise bad_request(f"unable to parse requirement: invalid label selector term {term!r}")
        neg, key, op, values = m.groups()
        if op:
            if neg:
                raise bad_request(f"unable to parse requirement: {term!r}")
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            checks.append(_label_in(key, vals, op == "in"))
        else:
            checks.append(_label_exists(key, not neg))
    return lambda labels: all(c(labels) for c in checks)


def selector_from_match_labels(selector: Mapping[str, Any] | None) -> str:
    """Render ``spec.selector`` (matchLabels / matchExpressions) as a selector string (for Scale status)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _field_value(obj: Mapping[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    if cur is None:
        return None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_selector(text: str | None) -> Predicate:
    """Compile a field selector (``metadata.name=web``, ``a!=b``) into a predicate over an object."""
    if not text:
        return lambda obj: True
    checks: list[Predicate] = []
    for term in _split_terms(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid field selector: {term!r}")
        path, op, val = m.groups()
        checks.append(_field_eq(path, val, op != "!="))
    return lambda obj: all(c(obj) for c in checks)
