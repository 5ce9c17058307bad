"""Fault injection (Python and HTTP control endpoint), the request log, watches and raw HTTP behaviour."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.kube import KubeSandbox


def _call(
    sb: KubeSandbox, method: str, path: str, body: Any = None, ctype: str = "application/json"
) -> tuple[int, dict[str, str], Any]:
    u = urlsplit(sb.url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": ctype} if data is not None else {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, dict(resp.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


def test_429_with_retry_after_is_retried_by_kubectl(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    rule = kube_sandbox.faults.add(method="GET", path_regex=r"/deployments/web$", status=429, retry_after=1, count=1)
    start = time.monotonic()
    out = kube_sandbox.kubectl("get", "deployment", "web", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metadata"]["name"] == "web"
    assert time.monotonic() - start >= 0.9
    gets = [r for r in kube_sandbox.requests() if r["path"].endswith("/deployments/web")]
    assert [r["status"] for r in gets] == [429, 200]
    assert gets[0]["fault"] == rule.id and rule.fired == 1


def test_429_without_retry_after_fails_kubectl(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.faults.add(method="GET", path_regex=r"/deployments/web$", status=429, count=1)
    out = kube_sandbox.kubectl("get", "deployment", "web", "-o", "json")
    assert out.returncode == 1
    assert "Error from server (TooManyRequests)" in out.stderr
    assert kube_sandbox.count_requests("GET", r"/deployments/web$") == 1


def test_503_with_retry_after_on_patch_is_retried(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.faults.add(method="PATCH", path_regex=r"/scale$", status=503, retry_after=1, count=1)
    out = kube_sandbox.kubectl("scale", "deployment/web", "--replicas=4")
    assert out.returncode == 0, out.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 4
    assert [r["status"] for r in kube_sandbox.requests() if r["method"] == "PATCH"] == [503, 200]


def test_latency_and_drop(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.faults.add(method="GET", path_regex=r"^/api/v1/namespaces/default$", latency_s=0.3, count=1)
    start = time.monotonic()
    status, _, body = _call(kube_sandbox, "GET", "/api/v1/namespaces/default")
    assert status == 200 and body["metadata"]["name"] == "default"
    assert time.monotonic() - start >= 0.3
    kube_sandbox.faults.add(path_regex=r"^/version$", drop=True, count=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _call(kube_sandbox, "GET", "/version")
    status, _, body = _call(kube_sandbox, "GET", "/version")
    assert status == 200 and body["minor"] == "32"


def test_fraction_is_deterministic_under_seed(kube_sandbox_factory: Callable[..., KubeSandbox]) -> None:
    def pattern(seed: int) -> list[int]:
        sb = kube_sandbox_factory(seed=seed)
        sb.faults.add(method="GET", path_regex="^/version$", status=500, fraction=0.5)
        return [_call(sb, "GET", "/version")[0] for _ in range(40)]

    first, again, other = pattern(7), pattern(7), pattern(8)
    assert first == again
    assert first != other
    assert 8 <= first.count(500) <= 32 and set(first) == {200, 500}


def test_count_limits_firing(kube_sandbox: KubeSandbox) -> None:
    rule = kube_sandbox.faults.add(path_regex="^/version$", status=500, retry_after=2, count=2)
    answers = [_call(kube_sandbox, "GET", "/version") for _ in range(3)]
    assert [a[0] for a in answers] == [500, 500, 200]
    assert answers[0][1]["Retry-After"] == "2" and answers[0][2]["reason"] == "InternalError"
    assert rule.fired == 2


def test_http_control_endpoint(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    status, _, body = _call(
        kube_sandbox,
        "POST",
        "/_sandbox/faults",
        {"method": "GET", "path_regex": "/deployments/web$", "status": 503, "count": 1},
    )
    assert status == 201 and body["items"][0]["status"] == 503
    assert _call(kube_sandbox, "GET", "/_sandbox/faults")[2]["items"][0]["count"] == 1
    out = kube_sandbox.kubectl("get", "deployment", "web", "-o", "json")
    assert out.returncode == 1 and "ServiceUnavailable" in out.stderr
    status, _, log = _call(kube_sandbox, "GET", "/_sandbox/requests")
    assert status == 200
    faulted = [r for r in log["items"] if r.get("fault")]
    assert len(faulted) == 1 and faulted[0]["command"] == "kubectl get" and faulted[0]["status"] == 503
    assert all(r["duration_s"] >= 0 for r in log["items"])
    assert not any(r["path"].startswith("/_sandbox") for r in log["items"])
    assert _call(kube_sandbox, "DELETE", "/_sandbox/faults")[0] == 200
    assert kube_sandbox.faults.rules == []
    assert _call(kube_sandbox, "DELETE", "/_sandbox/requests")[0] == 200
    assert kube_sandbox.requests() == []
    bad = _call(kube_sandbox, "POST", "/_sandbox/faults", {"bogus": 1})
    assert bad[0] == 400 and bad[2]["kind"] == "Status"
    assert _call(kube_sandbox, "POST", "/_sandbox/faults", {"status": 500, "path_regex": "("})[0] == 400
    # seeding and stuck through the control endpoint
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None
    dep2 = {k: dep[k] for k in ("apiVersion", "kind", "spec")}
    dep2["metadata"] = {"name": "api", "namespace": "default"}
    assert _call(kube_sandbox, "POST", "/_sandbox/objects", [dep2])[0] == 201
    assert kube_sandbox.get("deployment", "default", "api") is not None
    assert _call(kube_sandbox, "POST", "/_sandbox/stuck", {"namespace": "default", "name": "api"})[0] == 200


def test_watch_streams_changes_after_resource_version(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    _, _, lst = _call(
        kube_sandbox, "GET", "/apis/apps/v1/namespaces/default/deployments?fieldSelector=metadata.name%3Dweb"
    )
    assert lst["kind"] == "DeploymentList" and len(lst["items"]) == 1
    rv = lst["metadata"]["resourceVersion"]
    assert (
        _call(
            kube_sandbox,
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            {"spec": {"replicas": 3}},
            "application/merge-patch+json",
        )[0]
        == 200
    )
    kube_sandbox.settle()
    u = urlsplit(kube_sandbox.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.request(
        "GET",
        "/apis/apps/v1/namespaces/default/deployments?watch=true&allowWatchBookmarks=true"
        f"&fieldSelector=metadata.name%3Dweb&resourceVersion={rv}&timeoutSeconds=1",
    )
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    events = [json.loads(line) for line in resp.read().decode().splitlines()]
    conn.close()
    assert events and all(e["type"] == "MODIFIED" for e in events)
    assert events[0]["object"]["spec"]["replicas"] == 3
    assert events[-1]["object"]["status"]["availableReplicas"] == 3
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_from_zero_sends_current_objects_and_labels_filter(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.create_deployment("default", "api")
    u = urlsplit(kube_sandbox.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.request("GET", "/apis/apps/v1/namespaces/default/replicasets?watch=1&labelSelector=app%3Dapi&timeoutSeconds=1")
    events = [json.loads(line) for line in conn.getresponse().read().decode().splitlines()]
    conn.close()
    assert [(e["type"], e["object"]["metadata"]["labels"]["app"]) for e in events] == [("ADDED", "api")]


def test_list_limit_and_continue(kube_sandbox: KubeSandbox) -> None:
    for i in range(5):
        kube_sandbox.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {}})
    _, _, page = _call(kube_sandbox, "GET", "/api/v1/namespaces/default/configmaps?limit=2")
    assert [i["metadata"]["name"] for i in page["items"]] == ["c0", "c1"]
    assert page["metadata"]["remainingItemCount"] == 3
    token = page["metadata"]["continue"]
    _, _, page2 = _call(kube_sandbox, "GET", f"/api/v1/namespaces/default/configmaps?limit=2&continue={token}")
    assert [i["metadata"]["name"] for i in page2["items"]] == ["c2", "c3"]
    out = kube_sandbox.kubectl("get", "configmaps", "-o", "name", "--chunk-size=2")
    assert out.returncode == 0 and out.stdout.split() == [f"configmap/c{i}" for i in range(5)]


def test_put_and_patch_conflicts_on_stale_resource_version(kube_sandbox: KubeSandbox) -> None:
    dep = kube_sandbox.create_deployment("default", "web")
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    stale_rv = dep["metadata"]["resourceVersion"]
    assert _call(kube_sandbox, "PATCH", path, {"spec": {"replicas": 2}}, "application/merge-patch+json")[0] == 200
    code, _, body = _call(
        kube_sandbox,
        "PATCH",
        path,
        {"metadata": {"resourceVersion": stale_rv}, "spec": {"replicas": 9}},
        "application/merge-patch+json",
    )
    assert code == 409 and body["reason"] == "Conflict"
    dep["spec"]["replicas"] = 9
    code, _, body = _call(kube_sandbox, "PUT", path, dep)
    assert code == 409 and "the object has been modified" in body["message"]
    live = kube_sandbox.get("deployment", "default", "web")
    assert live is not None and live["spec"]["replicas"] == 2


def test_no_op_dry_run_returns_live_object_unchanged(kube_sandbox: KubeSandbox) -> None:
    live = kube_sandbox.create_deployment("default", "web")
    path = "/apis/apps/v1/namespaces/default/deployments/web?dryRun=All"
    code, _, body = _call(kube_sandbox, "PATCH", path, {"spec": {"replicas": 1}}, "application/merge-patch+json")
    assert code == 200 and body == live
    code, _, body = _call(kube_sandbox, "PATCH", path, {"spec": {"replicas": 6}}, "application/merge-patch+json")
    assert code == 200 and body["spec"]["replicas"] == 6
    assert body["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert kube_sandbox.get("deployment", "default", "web") == live
    code, _, _ = _call(kube_sandbox, "DELETE", path, {"propagationPolicy": "Background"})
    assert code == 200 and kube_sandbox.get("deployment", "default", "web") == live


def test_patches_without_resource_version_never_conflict_with_controllers(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(rollout_delay=0.001, hpa_delay=0.001)
    sb.create_deployment("default", "web")
    sb.create_hpa("default", "web", "web", 1, 50)
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    codes = []
    for i in range(60):
        image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"nginx:{i % 3}"}]}}}}
        codes.append(_call(sb, "PATCH", path, image, "application/strategic-merge-patch+json")[0])
        codes.append(
            _call(sb, "PATCH", path + "/scale", {"spec": {"replicas": 1 + i % 4}}, "application/merge-patch+json")[0]
        )
    assert codes == [200] * 120
    sb.settle()
    dep = sb.get("deployment", "default", "web")
    assert dep is not None and dep["status"]["observedGeneration"] == dep["metadata"]["generation"]


def test_conflicts_scale_and_apply_retry_set_resources_fails(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.faults.add(method="PATCH", path_regex=r"/deployments/web/scale$", status=409, count=1)
    out = kube_sandbox.kubectl("scale", "deployment/web", "--replicas=3")
    assert out.returncode == 0, out.stderr
    assert [r["status"] for r in kube_sandbox.requests() if r["method"] == "PATCH"] == [409, 200]
    hpa = kube_sandbox.write(
        "hpa.yaml",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
        "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
        "  minReplicas: 1\n  maxReplicas: 4\n",
    )
    assert kube_sandbox.kubectl("apply", "-f", str(hpa)).returncode == 0
    hpa.write_text(hpa.read_text().replace("maxReplicas: 4", "maxReplicas: 5"))
    kube_sandbox.faults.add(method="PATCH", path_regex=r"/horizontalpodautoscalers/web$", status=409, count=1)
    applied = kube_sandbox.kubectl("apply", "-f", str(hpa))
    assert applied.returncode == 0, applied.stderr
    got = kube_sandbox.get("hpa", "default", "web")
    assert got is not None and got["spec"]["maxReplicas"] == 5
    kube_sandbox.faults.add(
        method="PATCH",
        path_regex=r"/deployments/web$",
        status=409,
        count=1,
        message='Operation cannot be fulfilled on deployments.apps "web": the object has been modified',
    )
    res = kube_sandbox.kubectl("set", "resources", "deployment/web", "-c=app", "--limits=cpu=1")
    assert res.returncode == 1
    assert "Operation cannot be fulfilled" in res.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and "resources" not in dep["spec"]["template"]["spec"]["containers"][0]


def test_server_dry_runs_of_scale_delete_create_persist_nothing(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    rv = kube_sandbox.store.resource_version
    scale = kube_sandbox.kubectl("scale", "deployment/web", "--replicas=9", "--dry-run=server")
    assert scale.returncode == 0 and "(server dry run)" in scale.stdout, scale.stderr
    delete = kube_sandbox.kubectl("delete", "deployment", "web", "--dry-run=server")
    assert delete.returncode == 0 and "(server dry run)" in delete.stdout, delete.stderr
    cm = kube_sandbox.kubectl("create", "configmap", "c", "--from-literal=a=b", "--dry-run=server")
    assert cm.returncode == 0 and "(server dry run)" in cm.stdout, cm.stderr
    assert kube_sandbox.store.resource_version == rv
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 2
    assert kube_sandbox.get("configmap", "default", "c") is None


def test_dropped_connection_get_is_retried_patch_is_not(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.faults.add(method="GET", path_regex=r"/deployments/web$", drop=True, count=1)
    out = kube_sandbox.kubectl("get", "deploy", "web", "-o", "name")
    assert out.returncode == 0 and out.stdout.strip() == "deployment.apps/web", out.stderr
    assert [r["status"] for r in kube_sandbox.requests() if r["path"].endswith("/deployments/web")] == [0, 200]
    kube_sandbox.faults.add(method="PATCH", path_regex=r"/scale$", drop=True, count=1)
    scale = kube_sandbox.kubectl("scale", "deploy/web", "--replicas=3")
    assert scale.returncode == 1 and "EOF" in scale.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 1


def test_a_rule_can_target_one_kubectl_command(kube_sandbox: KubeSandbox) -> None:
    """Both commands PATCH /deployments/web: the rule for `kubectl set` is left alone by `kubectl annotate`."""
    kube_sandbox.create_deployment("default", "web")
    rule = kube_sandbox.faults.add(method="PATCH", path_regex=r"/deployments/web$", command="kubectl set", status=500,
                                   count=1)
    annotated = kube_sandbox.kubectl("annotate", "deployment/web", "note=kept", "--overwrite")
    assert annotated.returncode == 0 and rule.fired == 0, annotated.stderr
    changed = kube_sandbox.kubectl("set", "resources", "deployment/web", "-c=app", "--limits=cpu=300m")
    assert changed.returncode == 1 and "injected fault (HTTP 500)" in changed.stderr and rule.fired == 1
    [faulted] = [r for r in kube_sandbox.requests() if r.get("fault") == rule.id]
    assert faulted["command"] == "kubectl set resources" and faulted["method"] == "PATCH"
    # leading words only, never a partial word; and the HTTP control endpoint takes the same field
    assert kube_sandbox.faults.add(command="kubectl a", status=500).fired == 0
    assert kube_sandbox.kubectl("annotate", "deployment/web", "note=again", "--overwrite").returncode == 0
    status, _, body = _call(kube_sandbox, "POST", "/_sandbox/faults",
                            {"method": "GET", "command": "kubectl rollout", "status": 503, "count": 1})
    assert status == 201 and body["items"][0]["command"] == "kubectl rollout"
    assert kube_sandbox.kubectl("get", "deployment", "web", "-o", "name").returncode == 0
    history = kube_sandbox.kubectl("rollout", "history", "deployment/web")
    assert history.returncode == 1 and "HTTP 503" in history.stderr, history.stderr
    with pytest.raises(ValueError, match="must name a kubectl command"):
        kube_sandbox.faults.add(command="scale", status=500)


def test_an_answer_held_back_past_the_client_timeout_still_commits_the_write(kube_sandbox: KubeSandbox) -> None:
    """`answer_late_s`: the API server served the write, the client gave up before the answer came."""
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.faults.add(method="PATCH", path_regex=r"/scale$", answer_late_s=3, count=1)
    started = time.monotonic()
    scale = kube_sandbox.kubectl("scale", "deploy/web", "--replicas=3", "--request-timeout=1s")
    assert scale.returncode == 1 and time.monotonic() - started < 3, scale.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 3, "the write landed though its answer never arrived"
    [late] = [r for r in kube_sandbox.requests() if r["method"] == "PATCH"]
    assert late["status"] == 200


def test_a_client_that_resets_its_connection_is_not_a_server_error(kube_sandbox: KubeSandbox,
                                                                    capfd: pytest.CaptureFixture[str]) -> None:
    """A run killed mid-request resets its connection: the server says nothing (stdlib printed a traceback)."""
    host, port = kube_sandbox.url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as client:
            client.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    time.sleep(0.5)

    assert "Traceback" not in capfd.readouterr().err
    assert _call(kube_sandbox, "GET", "/api/v1/namespaces/default")[0] == 200, "still serving"


def test_a_rule_can_target_one_field_manager(kube_sandbox: KubeSandbox) -> None:
    """Two `kubectl patch` calls on one path, told apart by `--field-manager`, as the request log tells them."""
    kube_sandbox.create_deployment("default", "web")
    rule = kube_sandbox.faults.add(method="PATCH", path_regex=r"/deployments/web$", field_manager="stamper",
                                   status=500, count=1)
    patch = ("patch", "deployment/web", "--type=merge", "-p", '{"metadata":{"annotations":{"note":"x"}}}')
    assert kube_sandbox.kubectl(*patch).returncode == 0 and rule.fired == 0
    stamped = kube_sandbox.kubectl(*patch, "--field-manager=stamper")
    assert stamped.returncode == 1 and "injected fault (HTTP 500)" in stamped.stderr and rule.fired == 1
    assert [r["field_manager"] for r in kube_sandbox.requests() if r["method"] == "PATCH"] == ["kubectl-patch",
                                                                                             "stamper"]
    status, _, body = _call(kube_sandbox, "POST", "/_sandbox/faults",
                            {"method": "PATCH", "field_manager": "stamper", "status": 503, "count": 1})
    assert status == 201 and body["items"][0]["field_manager"] == "stamper"
