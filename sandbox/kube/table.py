"""``meta.k8s.io/v1`` Table answers, so plain ``kubectl get deploy`` prints READY / UP-TO-DATE / AVAILABLE like a
real cluster instead of only NAME / AGE (kubectl asks for a Table whenever no ``-o`` format is given)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from . import policy
from .discovery import ResourceType
from .store import Obj

Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _age(obj: Obj) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    try:
        created = dt.datetime.strptime(str(ts), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<unknown>"
    secs = max(int((dt.datetime.now(dt.UTC) - created).total_seconds()), 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60}s" if secs < 600 else f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h{(secs % 3600) // 60}m" if secs < 36000 else f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _spec(o: Obj) -> dict[str, Any]:
    s = o.get("spec")
    return s if isinstance(s, dict) else {}


def _status(o: Obj) -> dict[str, Any]:
    s = o.get("status")
    return s if isinstance(s, dict) else {}


def _containers(o: Obj) -> list[dict[str, Any]]:
    tmpl = _spec(o).get("template") or {}
    cs = (tmpl.get("spec") or {}).get("containers") if isinstance(tmpl, dict) else None
    return [c for c in cs or [] if isinstance(c, dict)]


def _selector(o: Obj) -> str:
    sel = _spec(o).get("selector") or {}
    labels = sel.get("matchLabels") or {} if isinstance(sel, dict) else {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _hpa_targets(o: Obj) -> str:
    out = []
    for m in _spec(o).get("metrics") or []:
        res = (m or {}).get("resource") or {}
        target = res.get("target") or {}
        if "averageUtilization" in target:
            out.append(f"{res.get('name', '?')}: <unknown>/{target['averageUtilization']}%")
    return ", ".join(out) or "<none>"


def _pod_ready(o: Obj) -> str:
    statuses = _status(o).get("containerStatuses") or []
    ready = sum(1 for c in statuses if isinstance(c, dict) and c.get("ready"))
    return f"{ready}/{len(_spec(o).get('containers') or [])}"


def _pod_status(o: Obj) -> str:
    """What kubectl prints as STATUS: Terminating, else a waiting container's reason, else the pod's reason or
    phase (as the server-side printer does)."""
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for c in _status(o).get("containerStatuses") or []:
        waiting = ((c or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return str(_status(o).get("reason") or _status(o).get("phase") or "Unknown")


def _pod_restarts(o: Obj) -> str:
    return str(sum(int((c or {}).get("restartCount") or 0) for c in _status(o).get("containerStatuses") or []))


NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
AGE: Column = ("Age", "string", 0, _age)

COLUMNS: dict[str, list[Column]] = {
    "Deployment": [
        NAME,
        ("Ready", "string", 0, lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}"),
        ("Up-to-date", "integer", 0, lambda o: _status(o).get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: _status(o).get("availableReplicas", 0)),
        AGE,
        ("Containers", "string", 1, lambda o: ",".join(str(c.get("name", "")) for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(str(c.get("image", "")) for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    "Pod": [
        NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, _pod_restarts),
        AGE,
        ("IP", "string", 1, lambda o: _status(o).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda o: _spec(o).get("nodeName") or "<none>"),
        ("Nominated Node", "string", 1, lambda o: _status(o).get("nominatedNodeName") or "<none>"),
        ("Readiness Gates", "string", 1, lambda o: "<none>"),
    ],
    "ReplicaSet": [
        NAME,
        ("Desired", "integer", 0, lambda o: _spec(o).get("replicas", 1)),
        ("Current", "integer", 0, lambda o: _status(o).get("replicas", 0)),
        ("Ready", "integer", 0, lambda o: _status(o).get("readyReplicas", 0)),
        AGE,
        ("Containers", "string", 1, lambda o: ",".join(str(c.get("name", "")) for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(str(c.get("image", "")) for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    "StatefulSet": [
        NAME,
        ("Ready", "string", 0, lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}"),
        AGE,
    ],
    "HorizontalPodAutoscaler": [
        NAME,
        (
            "Reference",
            "string",
            0,
            lambda o: (
                f"{(_spec(o).get('scaleTargetRef') or {}).get('kind', '')}/"
                f"{(_spec(o).get('scaleTargetRef') or {}).get('name', '')}"
            ),
        ),
        ("Targets", "string", 0, _hpa_targets),
        ("MinPods", "integer", 0, lambda o: _spec(o).get("minReplicas", 1)),
        ("MaxPods", "integer", 0, lambda o: _spec(o).get("maxReplicas", 0)),
        ("Replicas", "integer", 0, lambda o: _status(o).get("currentReplicas", 0)),
        AGE,
    ],
    "Namespace": [NAME, ("Status", "string", 0, lambda o: _status(o).get("phase", "Active")), AGE],
    "ConfigMap": [
        NAME,
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        AGE,
    ],
    "Lease": [NAME, ("Holder", "string", 0, lambda o: _spec(o).get("holderIdentity", "")), AGE],
    "ResourceQuota": [NAME, AGE, *policy.QUOTA_COLUMNS],
    "PodDisruptionBudget": [NAME, *policy.PDB_COLUMNS, AGE],
    "LimitRange": [NAME, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp", ""))],
}


def to_table(r: ResourceType, items: list[Obj], resource_version: str) -> dict[str, Any]:
    cols = COLUMNS.get(r.kind, [NAME, AGE])
    rows = []
    for o in items:
        meta = {k: v for k, v in (o.get("metadata") or {}).items() if k != "managedFields"}
        rows.append(
            {
                "cells": [cell(o) for _, _, _, cell in cols],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n, "priority": p}
            for n, t, p, _ in cols
        ],
        "rows": rows,
    }
