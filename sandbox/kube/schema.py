"""Defaults and validation for the served kinds.

Only the rules a client can trip over are modelled: types that would fail Go decoding answer 400 BadRequest,
semantic problems answer 422 Invalid with kube-apiserver's message shape. Defaults are the ones kubectl shows
back (replicas, strategy, revisionHistoryLimit, ...), applied on every write so no-op detection stays exact.
"""

from __future__ import annotations

import re
from typing import Any

from . import policy, quantity
from .autoscaling import apply_v2_defaults
from .discovery import ResourceType
from .errors import bad_request, invalid

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_CONFIGMAP_BYTES = 1024 * 1024  # corev1.MaxSecretSize: data + binaryData of one ConfigMap
MAX_ANNOTATIONS_BYTES = 256 * 1024  # TotalAnnotationSizeLimitB
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_NAME_PART_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _decode_error(field: str, want: str, value: Any) -> Exception:
    return bad_request(f"json: cannot unmarshal {type(value).__name__} into Go struct field {field} of type {want}")


def check_types(obj: dict[str, Any]) -> None:
    """400 for shapes Go decoding would reject."""
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
    policy.check_types(obj)
    for _, container in _containers(obj):
        resources = container.get("resources")
        for group in ("requests", "limits"):
            values = resources.get(group) if isinstance(resources, dict) else None
            for v in (values or {}).values() if isinstance(values, dict) else ():
                if not quantity.is_quantity(v):
                    kind = str(obj.get("kind") or "object")
                    raise bad_request(
                        f'{kind} in version "{_version(obj)}" cannot be handled as a {kind}: {quantity.QuantityError()}'
                    )
    if obj.get("kind") == "Lease" and isinstance(spec, dict):
        for key in ("acquireTime", "renewTime"):
            value = spec.get(key)
            if value is not None and (not isinstance(value, str) or not _MICRO_TIME.match(value)):
                raise bad_request(
                    f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" as '
                    f'"2006-01-02T15:04:05.000000Z07:00": cannot parse "{value}" as "2006"'
                )
        for key in ("leaseDurationSeconds", "leaseTransitions"):
            if (
                key in spec
                and spec[key] is not None
                and (not isinstance(spec[key], int) or isinstance(spec[key], bool))
            ):
                raise _decode_error(f"LeaseSpec.spec.{key}", "int32", spec[key])


def _version(obj: dict[str, Any]) -> str:
    return str(obj.get("apiVersion") or "v1").rsplit("/", 1)[-1]


def _containers(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(field path, container) of a workload's pod template or a pod."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    template = spec.get("template")
    pod_spec, path = (template.get("spec"), "spec.template.spec") if isinstance(template, dict) else (spec, "spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not isinstance(containers, list):
        return []
    return [(f"{path}.containers[{i}]", c) for i, c in enumerate(containers) if isinstance(c, dict)]


def _key_problem(key: str) -> str | None:
    """What is wrong with a label or annotation key (a qualified name), as IsQualifiedName says it."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return (
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
            "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return _NAME_PART_MESSAGE
    return None


def _metadata_causes(meta: dict[str, Any]) -> list[str]:
    causes: list[str] = []
    labels = meta.get("labels") or {}
    for key, value in labels.items():
        problem = _key_problem(key)
        if problem:
            causes.append(f'metadata.labels: Invalid value: "{key}": {problem}')
        if len(value) > 63:
            causes.append(f'metadata.labels: Invalid value: "{value}": must be no more than 63 characters')
        elif not _LABEL_VALUE.match(value):
            causes.append(f'metadata.labels: Invalid value: "{value}": {_LABEL_VALUE_MESSAGE}')
    annotations = meta.get("annotations") or {}
    for key in annotations:
        problem = _key_problem(key.lower())
        if problem:
            causes.append(f'metadata.annotations: Invalid value: "{key}": {problem}')
    if sum(len(k) + len(v) for k, v in annotations.items()) > MAX_ANNOTATIONS_BYTES:
        causes.append(f"metadata.annotations: Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes")
    return causes


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _resource_causes(obj: dict[str, Any]) -> list[str]:
    """requests <= limits for every resource named in both (ValidateResourceRequirements)."""
    causes: list[str] = []
    for path, container in _containers(obj):
        resources = _object(container.get("resources"))
        requests, limits = _object(resources.get("requests")), _object(resources.get("limits"))
        for name, request in requests.items():
            if name in limits and quantity.value_of(request) > quantity.value_of(limits[name]):
                causes.append(
                    f'{path}.resources.requests: Invalid value: "{request}": must be less than or equal to '
                    f"{name} limit of {limits[name]}"
                )
    return causes


def _configmap_causes(obj: dict[str, Any]) -> list[str]:
    causes: list[str] = []
    size = 0
    for field in ("data", "binaryData"):
        values = obj.get(field)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if len(key) > 253 or not _CONFIG_KEY.match(key):
                causes.append(
                    f'{field}[{key}]: Invalid value: "{key}": a valid config key must consist of alphanumeric '
                    "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                    "for validation is '[-._a-zA-Z0-9]+')"
                )
            size += len(str(value).encode())
    if size > MAX_CONFIGMAP_BYTES:
        causes.append(f"[]: Too long: may not be more than {MAX_CONFIGMAP_BYTES} bytes")
    return causes


def _lease_causes(spec: dict[str, Any]) -> list[str]:
    causes: list[str] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(f"spec.leaseDurationSeconds: Invalid value: {duration}: must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(f"spec.leaseTransitions: Invalid value: {transitions}: must be greater than or equal to 0")
    return causes


def apply_defaults(r: ResourceType, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    policy.apply_defaults(obj)
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
        apply_v2_defaults(spec)
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
    causes += _metadata_causes(meta)
    causes += _resource_causes(obj)
    spec = obj.get("spec") or {}
    if r.kind == "ConfigMap":
        causes += _configmap_causes(obj)
    elif r.kind == "Lease":
        causes += _lease_causes(spec)
    causes += policy.causes(r.kind, obj)
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
