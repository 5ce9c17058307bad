"""Live-object builders and small helpers shared by the infra-scale tests."""

from typing import Any


def deployment(
    name: str,
    replicas: int = 2,
    containers: dict[str, dict[str, Any]] | None = None,
    kind: str = "Deployment",
    revision: int = 1,
) -> dict[str, Any]:
    """A live workload as `kubectl get -o json` shows it; `containers` maps name -> resources."""
    spec_containers = [
        {"name": cname, "image": "nginx", "resources": resources}
        for cname, resources in (containers or {"app": {}}).items()
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "ns",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {"replicas": replicas, "template": {"spec": {"containers": spec_containers}}},
    }


def hpa(
    name: str, target: str, low: int, high: int, cpu: int | None = 80, target_kind: str = "Deployment"
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
        "minReplicas": low,
        "maxReplicas": high,
    }
    if cpu is not None:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
            }
        ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": "u-1",
            "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": spec,
        "status": {"currentReplicas": low, "desiredReplicas": low},
    }
