"""core.landed: whether a write whose answer was lost is already in effect (pure; live states from state_of)."""

from typing import Any

from core.landed import forward_landed, reverse_landed
from core.plan import ApplyHpa, HpaBounds, ScaleWorkload, UpdateResources, Workload
from core.state import state_of

WEB = Workload("Deployment", "web")


def deployment(replicas: int = 2, resources: dict[str, Any] | None = None, image: str = "nginx:1.25",
               sidecar: bool = False) -> dict[str, Any]:
    containers = [{"name": "app", "image": image, "resources": resources or {}}]
    if sidecar:
        containers.append({"name": "log", "image": "busybox", "resources": {"limits": {"cpu": "50m"}}})
    return {"kind": "Deployment", "metadata": {"name": "web", "annotations": {}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}}


def hpa(min_replicas: int, max_replicas: int, **extra: Any) -> dict[str, Any]:
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": min_replicas, "maxReplicas": max_replicas, **extra}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": spec}


def test_a_scale_landed_when_replicas_equal_the_planned_value() -> None:
    action = ScaleWorkload(WEB, 5)
    assert forward_landed(action, state_of(action, [deployment(replicas=5)]))
    assert not forward_landed(action, state_of(action, [deployment(replicas=2)]))
    assert not forward_landed(action, state_of(action, []))


def test_resources_landed_in_any_spelling_of_the_quantities() -> None:
    action = UpdateResources(WEB, "app", {"cpu": "500m"}, {"memory": "1Gi"})
    landed = deployment(resources={"requests": {"cpu": "0.5"}, "limits": {"memory": "1024Mi", "cpu": "1"}})
    assert forward_landed(action, state_of(action, [landed]))
    assert not forward_landed(action, state_of(action, [deployment(resources={"requests": {"cpu": "250m"}})]))


def test_resources_without_a_container_must_have_landed_in_every_container() -> None:
    action = UpdateResources(WEB, None, {}, {"cpu": "200m"})
    only_app = deployment(resources={"limits": {"cpu": "200m"}}, sidecar=True)
    both = {**only_app, "spec": {**only_app["spec"], "template": {"spec": {"containers": [
        {"name": "app", "resources": {"limits": {"cpu": "200m"}}},
        {"name": "log", "resources": {"limits": {"cpu": "0.2"}}}]}}}}
    assert not forward_landed(action, state_of(action, [only_app]))
    assert forward_landed(action, state_of(action, [both]))


def test_resources_on_a_missing_container_never_landed() -> None:
    action = UpdateResources(WEB, "nope", {"cpu": "1"}, {})
    assert not forward_landed(action, state_of(action, [deployment(resources={"requests": {"cpu": "1"}})]))


def test_an_hpa_from_bounds_landed_when_its_spec_has_them_whatever_the_server_defaulted() -> None:
    action = ApplyHpa("web", WEB, None, HpaBounds(2, 7, 80))
    metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                             "averageUtilization": 80}}}]
    defaulted = hpa(2, 7, metrics=metrics, behavior={"scaleDown": {"stabilizationWindowSeconds": 300}})
    assert forward_landed(action, state_of(action, [defaulted]))
    assert not forward_landed(action, state_of(action, [hpa(2, 7)]))  # the metric is missing
    assert not forward_landed(action, state_of(action, [hpa(1, 7, metrics=metrics)]))
    assert not forward_landed(action, None)


def test_an_hpa_from_a_manifest_is_compared_with_that_manifest() -> None:
    action = ApplyHpa("web", WEB, "hpa.yaml", None)
    manifest = hpa(3, 9)
    assert forward_landed(action, state_of(action, [hpa(3, 9)]), manifest)
    assert not forward_landed(action, state_of(action, [hpa(3, 8)]), manifest)
    assert not forward_landed(action, state_of(action, [hpa(3, 9)]))  # without the manifest: cannot tell


def test_a_reverse_step_landed_when_the_live_state_equals_the_recorded_before_state() -> None:
    scale = ScaleWorkload(WEB, 5)
    before = state_of(scale, [deployment(replicas=2)])
    assert reverse_landed(scale, state_of(scale, [deployment(replicas=2)]), before)
    assert not reverse_landed(scale, state_of(scale, [deployment(replicas=5)]), before)

    resources = UpdateResources(WEB, "app", {"cpu": "1"}, {})
    recorded = state_of(resources, [deployment(resources={"requests": {"cpu": "250m"}})])
    assert reverse_landed(resources, state_of(resources, [deployment(resources={"requests": {"cpu": "0.25"}})]),
                          recorded)
    assert not reverse_landed(resources, state_of(resources, [deployment(resources={"requests": {"cpu": "1"}})]),
                              recorded)
    someone_elses_deploy = deployment(resources={"requests": {"cpu": "250m"}}, image="nginx:1.27")
    assert not reverse_landed(resources, state_of(resources, [someone_elses_deploy]), recorded)


def test_a_reverse_step_of_an_hpa_the_plan_created_landed_once_it_is_gone() -> None:
    action = ApplyHpa("web", WEB, None, HpaBounds(2, 7, None))
    assert reverse_landed(action, None, None)
    assert not reverse_landed(action, state_of(action, [hpa(2, 7)]), None)
    before = state_of(action, [hpa(1, 4)])
    assert reverse_landed(action, state_of(action, [hpa(1, 4)]), before)
    assert not reverse_landed(action, state_of(action, [hpa(2, 7)]), before)
    assert not reverse_landed(action, None, before)
