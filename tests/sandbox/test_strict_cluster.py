"""The sandbox fails like a real cluster (issue 15): pods and rolling updates, progress deadlines, StatefulSet
revisions, an HPA on a metric, validation in the real Status format, autoscaling/v1, tokens and RBAC."""

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.kube.controllers import fenceposts
from sandbox.kube.errors import ApiError
from sandbox.kube.quantity import QuantityError, parse
from tests.fixtures.kube import KubeSandbox
from tests.sandbox.test_faults_and_http import _call


def _wait(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _pods(sb: KubeSandbox, selector: str) -> list[dict[str, Any]]:
    return sb.list_objects("pods", "default", selector)


def _progressing(sb: KubeSandbox, name: str) -> tuple[str, str]:
    dep = sb.get("deployment", "default", name)
    assert dep is not None
    cond = next(c for c in dep["status"]["conditions"] if c["type"] == "Progressing")
    return cond["status"], cond["reason"]


# --- pure units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("100m", "0.1"), ("1.5Gi", str(1.5 * 2**30)), ("2e3", "2000"), ("64", "64"), ("1k", "1000")]
)
def test_quantities_parse_to_base_units(text: str, value: str) -> None:
    assert float(parse(text)) == float(value)


@pytest.mark.parametrize("text", ["1x", "", "m", "1.2.3", "--1"])
def test_bad_quantities_are_refused_with_the_apiservers_pattern(text: str) -> None:
    with pytest.raises(QuantityError, match=r"quantities must match the regular expression"):
        parse(text)


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "want"),
    [(4, "25%", "25%", (1, 1)), (1, "25%", "25%", (1, 0)), (10, 3, "0%", (3, 0)), (3, 0, 0, (0, 1))],
)
def test_fenceposts_round_surge_up_and_unavailable_down(
    replicas: int, surge: Any, unavailable: Any, want: tuple[int, int]
) -> None:
    dep = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}}
    assert fenceposts(dep, replicas) == want


# --- pods and rollouts ---------------------------------------------------------------------------------


def test_replicasets_own_pods_that_become_ready_after_the_delay(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(rollout_delay=30)
    sb.create_deployment("default", "web", replicas=3, wait=False)
    pods = _pods(sb, "app=web")
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Pending"}
    rs = sb.list_objects("rs", "default")[0]
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)
    assert all(p["metadata"]["labels"]["pod-template-hash"] for p in pods)
    assert sb.fast_forward()
    assert {p["status"]["phase"] for p in _pods(sb, "app=web")} == {"Running"}
    out = sb.kubectl("get", "pods", "-l", "app=web")
    assert out.returncode == 0 and out.stdout.count("web-") == 3, out.stderr
    # a deleted pod is replaced, as the ReplicaSet controller does
    victim = pods[0]["metadata"]["name"]
    assert sb.kubectl("delete", "pod", victim).returncode == 0
    names = {p["metadata"]["name"] for p in _pods(sb, "app=web")}
    assert len(names) == 3 and victim not in names


def test_a_rolling_update_never_exceeds_surge_nor_drops_below_availability(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(rollout_delay=0.02)
    sb.create_deployment("default", "web", replicas=4)
    seen: list[tuple[int, int]] = []

    def watch(ev: Any) -> None:
        if ev.resource.key == "pods":
            pods = sb.server.store.list(ev.resource, "default", "app=web", copy_items=False)[0]
            ready = sum(
                1
                for p in pods
                if any(c.get("type") == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            )
            seen.append((len(pods), ready))

    sb.server.store.add_listener(watch)
    assert sb.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    out = sb.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert out.returncode == 0, out.stderr
    # maxSurge 25% of 4 = 1 extra pod, maxUnavailable 25% of 4 = 1: between 3 ready and 5 pods at any time
    assert seen and max(total for total, _ in seen) <= 5 and min(ready for _, ready in seen) >= 3
    images = {p["spec"]["containers"][0]["image"] for p in _pods(sb, "app=web")}
    assert images == {"nginx:1.26"} and len(_pods(sb, "app=web")) == 4


def test_a_broken_image_ends_in_progress_deadline_exceeded_after_its_deadline(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    patch = '{"spec":{"progressDeadlineSeconds":1}}'
    assert kube_sandbox.kubectl("patch", "deployment/web", "-p", patch).returncode == 0
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:broken").returncode == 0
    assert _progressing(kube_sandbox, "web") in {("True", "NewReplicaSetCreated"), ("True", "ReplicaSetUpdated")}
    started = time.monotonic()
    out = kube_sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert out.returncode == 1 and 'error: deployment "web" exceeded its progress deadline' in out.stderr
    assert 0.9 < time.monotonic() - started < 15
    assert _progressing(kube_sandbox, "web") == ("False", "ProgressDeadlineExceeded")
    broken = [p for p in _pods(kube_sandbox, "app=web") if p["spec"]["containers"][0]["image"] == "nginx:broken"]
    assert len(broken) == 1, "maxSurge 1: one new pod, and it never becomes ready"
    assert broken[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["status"]["availableReplicas"] == 2, "the old pods keep serving"


def test_requests_larger_than_the_node_leave_pods_pending_unschedulable(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(node_allocatable={"cpu": "2", "memory": "4Gi"})
    sb.create_deployment("default", "web", replicas=1)
    assert sb.kubectl("set", "resources", "deployment/web", "--requests=cpu=3").returncode == 0
    sb.fast_forward()
    pending = [p for p in _pods(sb, "app=web") if p["status"]["phase"] == "Pending"]
    assert len(pending) == 1
    scheduled = next(c for c in pending[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert "Insufficient cpu" in scheduled["message"]


def test_a_custom_broken_image_pattern(kube_sandbox_factory: Callable[..., KubeSandbox]) -> None:
    sb = kube_sandbox_factory(broken_image=r"^bad/")
    sb.create_deployment("default", "web", image="nginx:broken")
    assert {p["status"]["phase"] for p in _pods(sb, "app=web")} == {"Running"}
    sb.create_deployment("default", "api", image="bad/app:1", wait=False)
    sb.fast_forward()
    assert {p["status"]["phase"] for p in _pods(sb, "app=api")} == {"Pending"}


def _statefulset(sb: KubeSandbox, strategy: dict[str, Any]) -> None:
    sb.create(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "updateStrategy": strategy,
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
                },
            },
        }
    )
    sb.fast_forward()


def test_statefulset_rolling_update_replaces_pods_from_the_highest_ordinal(kube_sandbox: KubeSandbox) -> None:
    _statefulset(kube_sandbox, {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    sts = kube_sandbox.get("sts", "default", "db")
    assert sts is not None and sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert sorted(p["metadata"]["name"] for p in _pods(kube_sandbox, "app=db")) == ["db-0", "db-1", "db-2"]
    assert kube_sandbox.kubectl("set", "image", "statefulset/db", "db=postgres:17").returncode == 0
    kube_sandbox.fast_forward()
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in _pods(kube_sandbox, "app=db")}
    assert images == {"db-0": "postgres:16", "db-1": "postgres:17", "db-2": "postgres:17"}, "partition 1 keeps db-0"
    sts = kube_sandbox.get("sts", "default", "db")
    assert sts is not None and sts["status"]["updatedReplicas"] == 2
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    patch = '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
    assert kube_sandbox.kubectl("patch", "statefulset/db", "-p", patch).returncode == 0
    out = kube_sandbox.kubectl("rollout", "status", "statefulset/db", "--timeout=20s")
    assert out.returncode == 0, out.stderr
    sts = kube_sandbox.get("sts", "default", "db")
    assert sts is not None and sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert sts["status"]["currentReplicas"] == 3


def test_statefulset_on_delete_replaces_only_deleted_pods(kube_sandbox: KubeSandbox) -> None:
    _statefulset(kube_sandbox, {"type": "OnDelete"})
    assert kube_sandbox.kubectl("set", "image", "statefulset/db", "db=postgres:17").returncode == 0
    kube_sandbox.fast_forward()
    assert {p["spec"]["containers"][0]["image"] for p in _pods(kube_sandbox, "app=db")} == {"postgres:16"}
    assert kube_sandbox.kubectl("delete", "pod", "db-2").returncode == 0
    kube_sandbox.fast_forward()
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in _pods(kube_sandbox, "app=db")}
    assert images == {"db-0": "postgres:16", "db-1": "postgres:16", "db-2": "postgres:17"}
    sts = kube_sandbox.get("sts", "default", "db")
    assert sts is not None and (sts["status"]["updatedReplicas"], sts["status"]["currentReplicas"]) == (1, 2)
    out = kube_sandbox.kubectl("rollout", "status", "statefulset/db", "--timeout=5s")
    assert out.returncode == 1 and "only available for RollingUpdate strategy type" in out.stderr


# --- HPA on a metric -------------------------------------------------------------------------------------


def test_hpa_scales_up_on_its_metric_and_down_only_after_the_stabilisation_window(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(hpa_delay=0.01, hpa_sync_period=0.2, hpa_downscale_stabilization=1.5)
    sb.create_deployment("default", "web", replicas=2)
    sb.create_hpa("default", "web", "web", min_replicas=1, max_replicas=10)
    status, _, _ = _call(sb, "POST", "/_sandbox/metrics", {"namespace": "default", "name": "web", "utilization": 160})
    assert status == 200
    # 160 % of the 80 % target at 2 pods: 4 pods
    assert _wait(lambda: (sb.get("deployment", "default", "web") or {})["spec"]["replicas"] == 4)
    hpa = sb.get("hpa", "default", "web")
    assert hpa is not None and hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 80
    sb.server.set_metric("default", "web", 20)  # load drops to a quarter: 1 pod would do
    time.sleep(0.5)
    assert (sb.get("deployment", "default", "web") or {})["spec"]["replicas"] == 4, "held by the window"
    assert _wait(lambda: (sb.get("deployment", "default", "web") or {})["spec"]["replicas"] == 1, timeout=10)


def test_hpa_behavior_policies_limit_the_scale_up_rate(kube_sandbox_factory: Callable[..., KubeSandbox]) -> None:
    sb = kube_sandbox_factory(hpa_delay=0.01, hpa_sync_period=0.2)
    sb.create_deployment("default", "web", replicas=2)
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 20,
            "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}]}},
        },
    }
    stored = sb.create(hpa)
    assert stored["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Max", "v2 defaults fill the rules"
    assert stored["spec"]["behavior"]["scaleDown"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15}
    ]
    sb.server.set_metric("default", "web", 400)
    assert _wait(lambda: (sb.get("deployment", "default", "web") or {})["spec"]["replicas"] == 3)
    time.sleep(0.6)
    assert (sb.get("deployment", "default", "web") or {})["spec"]["replicas"] == 3, "one pod per 600 s"


# --- validation ------------------------------------------------------------------------------------------


def _apply_error(sb: KubeSandbox, manifest: dict[str, Any], *args: str) -> str:
    out = sb.kubectl("apply", *args, "-f", str(sb.write("m.json", json.dumps(manifest))))
    assert out.returncode == 1, out.stdout
    return out.stderr


def _deployment(resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx", "resources": resources, **extra}]},
            },
        },
    }


def test_a_configmap_over_1_mib_is_invalid(kube_sandbox: KubeSandbox) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x" * (1024 * 1024)}}
    kube_sandbox.create(big)  # exactly 1 MiB fits
    big["metadata"]["name"], big["data"]["b"] = "bigger", "y"
    status, _, body = _call(kube_sandbox, "POST", "/api/v1/namespaces/default/configmaps", big)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == 'ConfigMap "bigger" is invalid: []: Too long: may not be more than 1048576 bytes'
    assert body["details"]["causes"] == [
        {"reason": "FieldValueTooLong", "message": "Too long: may not be more than 1048576 bytes", "field": "[]"}
    ]


def test_requests_above_limits_are_invalid_with_the_field_path(kube_sandbox: KubeSandbox) -> None:
    err = _apply_error(kube_sandbox, _deployment({"requests": {"cpu": "300m"}, "limits": {"cpu": "200m"}}))
    assert (
        'The Deployment "web" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: '
        '"300m": must be less than or equal to cpu limit of 200m'
    ) in err


def test_a_bad_quantity_is_a_bad_request(kube_sandbox: KubeSandbox) -> None:
    status, _, body = _call(
        kube_sandbox, "POST", "/apis/apps/v1/namespaces/default/deployments", _deployment({"limits": {"cpu": "1x"}})
    )
    assert status == 400 and body["reason"] == "BadRequest"
    assert "quantities must match the regular expression" in body["message"]


def test_unknown_fields_follow_field_validation(kube_sandbox: KubeSandbox) -> None:
    manifest = _deployment({}, colour="blue")
    err = _apply_error(kube_sandbox, manifest)  # kubectl apply asks for Strict
    assert 'unknown field "spec.template.spec.containers[0].colour"' in err
    path = "/apis/apps/v1/namespaces/default/deployments"
    status, headers, body = _call(kube_sandbox, "POST", f"{path}?fieldValidation=Warn", manifest)
    assert status == 201 and 'unknown field \\"spec.template.spec.containers[0].colour\\"' in headers["Warning"]
    assert "colour" not in body["spec"]["template"]["spec"]["containers"][0], "unknown fields are never stored"
    manifest["metadata"]["name"] = "quiet"
    status, headers, _ = _call(kube_sandbox, "POST", f"{path}?fieldValidation=Ignore", manifest)
    assert status == 201 and "Warning" not in headers


def test_label_and_annotation_keys_are_validated(kube_sandbox: KubeSandbox) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"bad key": "v"}}}
    with pytest.raises(ApiError) as error:
        kube_sandbox.create(cm)
    assert (
        error.value.code == 422 and 'metadata.labels: Invalid value: "bad key": name part must' in error.value.message
    )
    cm["metadata"] = {"name": "c", "labels": {"ok": "-bad"}}
    with pytest.raises(ApiError, match="a valid label must be an empty string"):
        kube_sandbox.create(cm)
    cm["metadata"] = {"name": "c", "annotations": {"Example.com/x": "v", "/x": "v"}}
    with pytest.raises(ApiError, match=r'metadata\.annotations: Invalid value: "/x": prefix part'):
        kube_sandbox.create(cm)


def test_lease_fields_are_validated(kube_sandbox: KubeSandbox) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"leaseDurationSeconds": 0},
    }
    with pytest.raises(ApiError, match=r"spec\.leaseDurationSeconds: Invalid value: 0: must be greater than 0"):
        kube_sandbox.create(lease)
    lease["spec"] = {"leaseDurationSeconds": 10, "renewTime": "yesterday"}
    status, _, body = _call(kube_sandbox, "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", lease)
    assert status == 400 and 'parsing time "yesterday"' in body["message"]


# --- autoscaling/v1 ----------------------------------------------------------------------------------------


def test_autoscaling_v1_is_served_and_converted_to_and_from_v2(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 60,
        },
    }
    assert kube_sandbox.kubectl("apply", "-f", str(kube_sandbox.write("hpa.json", json.dumps(v1)))).returncode == 0
    stored = kube_sandbox.get("hpa", "default", "web")
    assert stored is not None and stored["apiVersion"] == "autoscaling/v2"
    assert stored["spec"]["minReplicas"] == 1
    assert stored["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    kube_sandbox.settle()
    status, _, seen = _call(kube_sandbox, "GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web")
    assert status == 200 and seen["apiVersion"] == "autoscaling/v1"
    assert seen["spec"]["targetCPUUtilizationPercentage"] == 60 and "metrics" not in seen["spec"]
    assert "autoscaling.alpha.kubernetes.io/conditions" in seen["metadata"]["annotations"]
    # a v2-only field survives a v1 round trip through an annotation
    v2 = {**stored, "spec": {**stored["spec"], "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}
    v2["metadata"] = {k: v for k, v in stored["metadata"].items() if k != "resourceVersion"}
    kube_sandbox.server.update(v2)
    status, _, seen = _call(kube_sandbox, "GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web")
    assert "stabilizationWindowSeconds" in seen["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/behavior"]
    status, _, _ = _call(
        kube_sandbox,
        "PATCH",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
        {"spec": {"maxReplicas": 7}},
        "application/merge-patch+json",
    )
    assert status == 200
    after = kube_sandbox.get("hpa", "default", "web")
    assert after is not None and after["spec"]["maxReplicas"] == 7
    assert after["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert not any(k.startswith("autoscaling.alpha") for k in after["metadata"].get("annotations", {}))


def test_v2_defaults_a_cpu_metric_when_none_is_given(kube_sandbox: KubeSandbox) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    }
    stored = kube_sandbox.create(hpa)
    assert stored["spec"]["minReplicas"] == 1 and "behavior" not in stored["spec"]
    assert stored["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]


# --- authentication and RBAC -----------------------------------------------------------------------------


def _as_user(sb: KubeSandbox, rules: list[dict[str, Any]]) -> dict[str, str]:
    sb.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "default"},
            "rules": rules,
        }
    )
    sb.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "r", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "jane"}],
        }
    )
    kubeconfig = sb.kubeconfig_as("jane-token", "jane")
    return {**sb.env, "KUBECONFIG": str(kubeconfig)}


def test_rbac_allows_exactly_the_bound_rules(kube_sandbox: KubeSandbox) -> None:
    import subprocess

    kube_sandbox.create_deployment("default", "web")
    env = _as_user(kube_sandbox, [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}])

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=30)

    assert kubectl("get", "deployment", "web", "-o", "name").stdout.strip() == "deployment.apps/web"
    denied = kubectl("scale", "deployment/web", "--replicas=3")
    assert denied.returncode == 1
    assert (
        'Error from server (Forbidden): deployments.apps "web" is forbidden: User "jane" cannot patch resource '
        '"deployments/scale" in API group "apps" in the namespace "default"'
    ) in denied.stderr
    listed = kubectl("get", "configmaps")
    assert 'User "jane" cannot list resource "configmaps" in API group "" in the namespace "default"' in listed.stderr
    cluster = kubectl("get", "namespaces")
    assert 'cannot list resource "namespaces" in API group "" at the cluster scope' in cluster.stderr
    users = {r.get("user") for r in kube_sandbox.requests() if r.get("verb")}
    assert "jane" in users
    # the admin kubeconfig the fixtures write keeps full access
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=3").returncode == 0


def test_an_unknown_token_is_unauthorized(kube_sandbox: KubeSandbox) -> None:
    import http.client
    import ssl
    from urllib.parse import urlsplit

    u = urlsplit(kube_sandbox.server.https_url)
    conn = http.client.HTTPSConnection(u.hostname or "", u.port, timeout=10, context=ssl._create_unverified_context())
    conn.request("GET", "/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 401 and (body["reason"], body["message"]) == ("Unauthorized", "Unauthorized")
    status, _, created = _call(kube_sandbox, "POST", "/_sandbox/tokens", {"token": "t", "user": "bob", "groups": ["g"]})
    assert status == 201 and created == {"user": "bob", "groups": ["g", "system:authenticated"]}
