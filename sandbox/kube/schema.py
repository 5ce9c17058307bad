"""Defaults and validation for the served kinds.

Only the rules a client can trip over are modelled: types that would fail Go decoding answer 400 BadRequest,
semantic problems answer 422 Invalid with kube-apiserver's message shape. Defaults are the ones kubectl shows
back (replicas, strategy, revisionHistoryLimit, ...), applied on every write so no-op detection stays exact.
"""

from __future__ import annotations

import re
from typing import Any

from .discovery import ResourceType
from .errors import bad_request, invalid

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status", "data", "binaryData", "immutable"})


def _decode_error(field: str, want: str, value: Any) -> Exception:
    return bad_request(f"json: cannot unmarshal {type(value).__name__} into Go struct field {field} of type {want}")


def check_types(obj: dict[str, Any], strict: bool = False) -> None:
    """400 for shapes Go decoding would reject (and, with ``strict``, unknown top-level fields)."""
    if strict:
        unknown = sorted(set(obj) - TOP_LEVEL)
        if unknown:
            raise bad_request(f'strict decoding error: unknown field "{unknown[0]}"')
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise _decode_error("metadata", "v1.ObjectMeta", meta)
    meta = meta or {}
    for key in ("name", "namespace", "generateName", "resourceVersion", "uid"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            raise _decode_error(f"ObjectMeta.metadata.{key}", "string", meta[key])
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise _decode_error(f"ObjectMeta.metadata.{key}", "map[string]string", value)
        for v in value.values():
            if not isinstance(v, str):
                raise _decode_error(f"ObjectMeta.metadata.{key}", "string", v)
    for key in ("spec", "status", "data"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], dict):
            raise _decode_error(key, "object", obj[key])
    spec = obj.get("spec") or {}
    for key in ("replicas", "minReplicas", "maxReplicas", "revisionHistoryLimit", "progressDeadlineSeconds"):
        if key in spec and spec[key] is not None and (not isinstance(spec[key], int) or isinstance(spec[key], bool)):
            raise _decode_error(f"spec.{key}", "int32", spec[key])
    for key in ("selector", "template", "scaleTargetRef", "strategy"):
        if key in spec and spec[key] is not None and not isinstance(spec[key], dict):
            raise _decode_error(f"spec.{key}", "object", spec[key])
    data = obj.get("data")
    if isinstance(data, dict):
        for v in data.values():
            if not isinstance(v, str):
                raise _decode_error("ConfigMap.data", "string", v)


def apply_defaults(r: ResourceType, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if r.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        if r.kind != "ReplicaSet":
            spec.setdefault("revisionHistoryLimit", 10)
    if r.kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                if isinstance(ru, dict):
                    ru.setdefault("maxSurge", "25%")
                    ru.setdefault("maxUnavailable", "25%")
    elif r.kind == "StatefulSet" and isinstance(spec, dict):
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    elif r.kind == "HorizontalPodAutoscaler" and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)
    elif r.kind == "Namespace":
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Terminating" if meta.get("deletionTimestamp") else "Active"}


def _selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    match = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in match.items())


def validate(r: ResourceType, obj: dict[str, Any]) -> None:
    """422 Invalid for semantic errors."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[str] = []
    pattern = _LABEL if r.kind == "Namespace" else _SUBDOMAIN
    limit = 63 if r.kind == "Namespace" else 253
    if not name:
        causes.append("metadata.name: Required value: name or generateName is required")
    elif len(name) > limit or not pattern.match(name):
        causes.append(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 '
            f"{'label' if r.kind == 'Namespace' else 'subdomain'} must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    spec = obj.get("spec") or {}
    if r.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        replicas = spec.get("replicas", 1)
        if isinstance(replicas, int) and replicas < 0:
            causes.append(f"spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0")
        selector = spec.get("selector")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append("spec.selector: Required value")
        elif not isinstance(labels, dict) or not _selector_matches(selector, labels):
            causes.append(
                f"spec.template.metadata.labels: Invalid value: {labels!r}: `selector` does not match template `labels`"
            )
        containers = (template.get("spec") or {}).get("containers") if isinstance(template, dict) else None
        if not isinstance(containers, list) or not containers:
            causes.append("spec.template.spec.containers: Required value")
        else:
            for i, c in enumerate(containers):
                if not isinstance(c, dict) or not c.get("name"):
                    causes.append(f"spec.template.spec.containers[{i}].name: Required value")
                elif not c.get("image"):
                    causes.append(f"spec.template.spec.containers[{i}].image: Required value")
    elif r.kind == "HorizontalPodAutoscaler":
        ref = spec.get("scaleTargetRef")
        if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
            causes.append("spec.scaleTargetRef: Required value")
        hi, lo = spec.get("maxReplicas"), spec.get("minReplicas", 1)
        if not isinstance(hi, int) or hi < 1:
            causes.append(f"spec.maxReplicas: Invalid value: {hi}: must be greater than or equal to 1")
        elif isinstance(lo, int) and lo > hi:
            causes.append(f"spec.maxReplicas: Invalid value: {hi}: must be greater than or equal to `minReplicas`")
        if isinstance(lo, int) and lo < 1:
            causes.append(f"spec.minReplicas: Invalid value: {lo}: must be greater than or equal to 1")
    if causes:
        raise invalid(r.kind, r.group, str(name), causes)
