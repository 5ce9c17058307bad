"""autoscaling/v2 defaults, and autoscaling/v1 as a view of the stored v2 HorizontalPodAutoscaler.

HPAs are stored as autoscaling/v2 (kube-apiserver's storage version). v1 has only the CPU utilisation target;
what it cannot hold travels in annotations, as the real conversion does: other metrics in
``autoscaling.alpha.kubernetes.io/metrics``, ``behavior`` in ``autoscaling.alpha.kubernetes.io/behavior``,
status conditions in ``autoscaling.alpha.kubernetes.io/conditions`` and current metrics in
``autoscaling.alpha.kubernetes.io/current-metrics``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

METRICS = "autoscaling.alpha.kubernetes.io/metrics"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
DEFAULT_CPU_UTILIZATION = 80
SCALE_UP_DEFAULT: dict[str, Any] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
SCALE_DOWN_DEFAULT: dict[str, Any] = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _cpu_metric(utilization: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


def apply_v2_defaults(spec: dict[str, Any]) -> None:
    """``SetDefaults_HorizontalPodAutoscaler``: minReplicas 1, a CPU 80 % metric when none is given, and the
    default scaling rules filled into whichever ``behavior`` direction is given or missing once any is."""
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for direction, default in (("scaleUp", SCALE_UP_DEFAULT), ("scaleDown", SCALE_DOWN_DEFAULT)):
            given = behavior.get(direction)
            behavior[direction] = (
                {**copy.deepcopy(default), **given} if isinstance(given, dict) else copy.deepcopy(default)
            )


def _is_cpu_utilization(metric: Any) -> bool:
    resource = metric.get("resource") or {} if isinstance(metric, dict) else {}
    target = resource.get("target") or {}
    return metric.get("type") == "Resource" and resource.get("name") == "cpu" and target.get("type") == "Utilization"


def to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec = out.get("spec") or {}
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    metrics = spec.pop("metrics", None) or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    others = [m for m in metrics if m is not cpu]
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get("averageUtilization")
    if others:
        annotations[METRICS] = json.dumps(others, separators=(",", ":"))
    behavior = spec.pop("behavior", None)
    if behavior:
        annotations[BEHAVIOR] = json.dumps(behavior, separators=(",", ":"))
    status = out.get("status")
    if isinstance(status, dict):
        conditions = status.pop("conditions", None)
        if conditions:
            annotations[CONDITIONS] = json.dumps(conditions, separators=(",", ":"))
        current = status.pop("currentMetrics", None) or []
        for metric in current:
            value = ((metric.get("resource") or {}).get("current") or {}).get("averageUtilization")
            if (metric.get("resource") or {}).get("name") == "cpu" and value is not None:
                status["currentCPUUtilizationPercentage"] = value
        if current:
            annotations[CURRENT_METRICS] = json.dumps(current, separators=(",", ":"))
    if annotations:
        meta["annotations"] = annotations
    return out


def to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.get("spec")
    meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
    annotations = dict(meta.get("annotations") or {}) if isinstance(meta, dict) else {}
    if isinstance(spec, dict):
        metrics: list[Any] = []
        cpu = spec.pop("targetCPUUtilizationPercentage", None)
        if cpu is not None:
            metrics.append(_cpu_metric(cpu))
        if METRICS in annotations:
            metrics += json.loads(annotations.pop(METRICS))
        if metrics:
            spec["metrics"] = metrics
        if BEHAVIOR in annotations:
            spec["behavior"] = json.loads(annotations.pop(BEHAVIOR))
    for key in (CONDITIONS, CURRENT_METRICS):
        annotations.pop(key, None)
    status = out.get("status")
    if isinstance(status, dict):
        status.pop("currentCPUUtilizationPercentage", None)
    if isinstance(meta, dict) and "annotations" in meta:
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations")
    return out
