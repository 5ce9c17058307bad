"""The diff: only what differs, HPA-aware, numeric quantities, clear errors for what cannot be planned."""

from typing import Any

import pytest

from core.desired import DesiredState, parse_desired
from core.diff import diff, hpa_bounds
from core.errors import InputError
from core.plan import ApplyHpa, HpaBounds, ScaleWorkload, UpdateResources, Workload
from tests.scale.helpers import deployment, hpa

WEB = Workload("Deployment", "web")


def desired(*workloads: dict[str, Any]) -> DesiredState:
    return parse_desired({"target": "t", "namespace": "ns", "workloads": list(workloads)}, "desired.yaml")


def test_equal_means_nothing_to_do() -> None:
    live = [deployment("web", 2, {"app": {"requests": {"cpu": "0.5", "memory": "256Mi"}}}), hpa("api", "api", 2, 6)]
    state = desired(
        {"name": "web", "replicas": 2, "containers": {"app": {"requests": {"cpu": "500m"}}}},
        {"name": "api", "hpa": {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 80}},
    )
    live.append(deployment("api", 4))
    result = diff(state, live)
    assert result.empty and result.actions == () and not result.previous_hpas


def test_one_replica_change_is_one_action() -> None:
    result = diff(
        desired({"name": "web", "replicas": 3}, {"name": "api", "replicas": 2}),
        [deployment("web", 2), deployment("api", 2)],
    )
    assert result.actions == (ScaleWorkload(WEB, 3),)
    assert result.changes[0].current == 2


def test_resources_only_the_differing_quantities() -> None:
    live = [
        deployment(
            "web", 2, {"app": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1"}}, "sidecar": {}}
        )
    ]
    state = desired(
        {
            "name": "web",
            "containers": {"app": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1000m"}}},
        }
    )
    (change,) = diff(state, live).changes
    assert change.action == UpdateResources(WEB, "app", {"memory": "512Mi"}, {})
    assert change.current == {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1"}}


def test_request_above_live_limit_is_refused() -> None:
    live = [deployment("web", 2, {"app": {"limits": {"cpu": "500m"}}})]
    with pytest.raises(InputError) as caught:
        diff(desired({"name": "web", "containers": {"app": {"requests": {"cpu": "1"}}}}), live)
    assert caught.value.field == "workloads[0].containers.app.requests.cpu"
    assert "more than the limit 500m" in caught.value.message


def test_hpa_managed_workload_gets_bounds_never_replicas() -> None:
    live = [deployment("web", 3), hpa("web-autoscaler", "web", 2, 6, cpu=80)]
    result = diff(desired({"name": "web", "replicas": 4}), live)
    (change,) = result.changes
    assert change.action == ApplyHpa("web-autoscaler", WEB, None, HpaBounds(4, 6, 80))
    assert change.current == {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 80}
    assert not any(isinstance(a, ScaleWorkload) for a in result.actions)
    assert set(result.previous_hpas) == {"web-autoscaler"}
    assert "replicas 4 becomes the HPA's minReplicas" in result.notes[0]


def test_replicas_above_hpa_max_raise_the_max() -> None:
    (change,) = diff(desired({"name": "web", "replicas": 9}), [deployment("web"), hpa("web", "web", 2, 6)]).changes
    assert isinstance(change.action, ApplyHpa) and change.action.bounds == HpaBounds(9, 9, 80)


def test_replicas_equal_to_hpa_floor_is_nothing() -> None:
    assert diff(desired({"name": "web", "replicas": 2}), [deployment("web", 5), hpa("web", "web", 2, 6)]).empty


def test_desired_hpa_bounds_keep_live_cpu_when_not_given() -> None:
    live = [deployment("web"), hpa("web", "web", 2, 6, cpu=75)]
    (change,) = diff(desired({"name": "web", "hpa": {"minReplicas": 3, "maxReplicas": 6}}), live).changes
    assert isinstance(change.action, ApplyHpa) and change.action.bounds == HpaBounds(3, 6, 75)


def test_desired_hpa_without_live_hpa_creates_one_with_no_previous() -> None:
    result = diff(desired({"name": "web", "hpa": {"minReplicas": 2, "maxReplicas": 5}}), [deployment("web")])
    assert result.actions == (ApplyHpa("web", WEB, None, HpaBounds(2, 5, None)),)
    assert not result.previous_hpas


def test_hpa_for_another_kind_does_not_manage() -> None:
    live = [deployment("web", 2), hpa("web-sts", "web", 1, 3, target_kind="StatefulSet")]
    assert diff(desired({"name": "web", "replicas": 3}), live).actions == (ScaleWorkload(WEB, 3),)


def test_hpa_name_clash_is_refused() -> None:
    live = [deployment("web"), hpa("web", "other", 1, 3)]
    with pytest.raises(InputError, match="retargeted"):
        diff(desired({"name": "web", "hpa": {"maxReplicas": 4}}), live)


def test_statefulset() -> None:
    live = [deployment("db", 1, kind="StatefulSet"), deployment("db", 5)]
    result = diff(desired({"kind": "StatefulSet", "name": "db", "replicas": 3}), live)
    assert result.actions == (ScaleWorkload(Workload("StatefulSet", "db"), 3),)


def test_missing_workload_cannot_be_created() -> None:
    with pytest.raises(InputError) as caught:
        diff(desired({"name": "web", "replicas": 1}, {"name": "ghost", "replicas": 1}), [deployment("web")])
    assert (caught.value.source, caught.value.field) == ("desired.yaml", "workloads[1].name")
    assert "cannot create" in caught.value.message


def test_missing_container() -> None:
    with pytest.raises(InputError, match=r"has no container 'db' \(it has: app\)"):
        diff(desired({"name": "web", "containers": {"db": {"limits": {"cpu": 1}}}}), [deployment("web")])


def test_order_scale_resources_hpa_per_workload() -> None:
    live = [deployment("web", 1), deployment("api", 1), hpa("api", "api", 1, 2)]
    state = desired(
        {"name": "web", "replicas": 2, "containers": {"app": {"limits": {"memory": "1Gi"}}}},
        {"name": "api", "hpa": {"maxReplicas": 4}},
    )
    assert [type(a).__name__ for a in diff(state, live).actions] == ["ScaleWorkload", "UpdateResources", "ApplyHpa"]


def test_v1_hpa_bounds() -> None:
    v1 = {"spec": {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}}
    assert hpa_bounds(v1) == HpaBounds(2, 5, 60)
    assert hpa_bounds({"spec": {"maxReplicas": 3}}) == HpaBounds(1, 3, None)


def test_hpa_with_other_metrics_gets_a_note() -> None:
    live_hpa = hpa("web", "web", 2, 6)
    live_hpa["spec"]["metrics"].append({"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}})
    result = diff(desired({"name": "web", "replicas": 3}), [deployment("web"), live_hpa])
    assert any("hpa/web also scales on memory" in note for note in result.notes)
