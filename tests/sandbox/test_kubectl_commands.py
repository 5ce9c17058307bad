"""Conformance: every command of kubectl-wire.md's table, run with real kubectl against the sandbox.

Each test checks kubectl's exit code and output, the server state, and where it matters the requests kubectl
sent (from the server's request log).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fixtures.kube import KubeSandbox

HPA_YAML = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: default
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: {max}
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 70}}}}
"""


def _deployment(name: str = "web", image: str = "nginx:1.25", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _log(sb: KubeSandbox, method: str, suffix: str) -> list[dict[str, Any]]:
    return [r for r in sb.requests() if r["method"] == method and r["path"].endswith(suffix)]


def test_version_minor_32_and_discovery(kube_sandbox: KubeSandbox) -> None:
    out = kube_sandbox.kubectl("version", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["serverVersion"]["minor"] == "32"
    res = kube_sandbox.kubectl("api-resources", "--no-headers")
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()}
    assert "deploy" in rows["deployments"] and "hpa" in rows["horizontalpodautoscalers"]
    assert {"namespaces", "configmaps", "replicasets", "statefulsets", "leases"} <= rows.keys()


def test_get_deployment_json(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    out = kube_sandbox.kubectl("get", "deployment", "web", "-o", "json")
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    live = kube_sandbox.get("deployment", "default", "web")
    assert live is not None
    assert obj["metadata"]["uid"] == live["metadata"]["uid"]
    assert obj["spec"]["replicas"] == 2 and obj["status"]["availableReplicas"] == 2
    assert _log(kube_sandbox, "GET", "/apis/apps/v1/namespaces/default/deployments/web")
    # the dispatcher's own /version probe carries no Kubectl-Command header; kubectl's requests all do
    api = [r for r in kube_sandbox.requests() if r["path"] != "/version"]
    assert api and all(r["command"] == "kubectl get" for r in api)


def test_scale_patches_scale_subresource_without_new_revision(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    out = kube_sandbox.kubectl("scale", "deployment/web", "--replicas=3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "deployment.apps/web scaled"
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 3
    assert dep["metadata"]["generation"] == 2
    assert kube_sandbox.revisions("default", "web") == [1]
    assert len(_log(kube_sandbox, "PATCH", "/deployments/web/scale")) == 1


def test_scale_current_replicas_precondition(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=3)
    bad = kube_sandbox.kubectl("scale", "deployment/web", "--current-replicas=2", "--replicas=5")
    assert bad.returncode == 1
    assert "Expected replicas to be 2, was 3" in bad.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 3
    ok = kube_sandbox.kubectl("scale", "deployment/web", "--current-replicas=3", "--replicas=5")
    assert ok.returncode == 0, ok.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 5


def test_set_resources_strategic_merge_by_container_name(kube_sandbox: KubeSandbox) -> None:
    containers = [{"name": "app", "image": "nginx:1.25"}, {"name": "sidecar", "image": "envoy:1"}]
    kube_sandbox.create_deployment("default", "web", containers=containers)
    out = kube_sandbox.kubectl("set", "resources", "deployment/web", "-c=app", "--limits=cpu=200m,memory=64Mi")
    assert out.returncode == 0, out.stderr
    assert "resource requirements updated" in out.stdout
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None
    got = dep["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in got] == ["app", "sidecar"]
    assert got[0]["resources"] == {"limits": {"cpu": "200m", "memory": "64Mi"}}
    assert got[0]["image"] == "nginx:1.25" and "resources" not in got[1]
    assert "$setElementOrder" not in json.dumps(dep)
    assert kube_sandbox.revisions("default", "web") == [1, 2]
    patch = _log(kube_sandbox, "PATCH", "/deployments/web")
    assert len(patch) == 1 and "fieldManager=kubectl-set" in patch[0]["query"]


def test_apply_hpa_create_then_update_then_unchanged(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    path = kube_sandbox.write("hpa.yaml", HPA_YAML.format(max=5))
    out = kube_sandbox.kubectl("apply", "-f", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "horizontalpodautoscaler.autoscaling/web created"
    post = _log(kube_sandbox, "POST", "/horizontalpodautoscalers")
    assert len(post) == 1 and "fieldManager=kubectl-client-side-apply" in post[0]["query"]
    assert post[0]["status"] == 201
    hpa = kube_sandbox.get("hpa", "default", "web")
    assert hpa is not None and "kubectl.kubernetes.io/last-applied-configuration" in hpa["metadata"]["annotations"]
    same = kube_sandbox.kubectl("apply", "-f", str(path))
    assert same.returncode == 0 and same.stdout.strip().endswith("unchanged"), same.stderr
    path.write_text(HPA_YAML.format(max=7))
    upd = kube_sandbox.kubectl("apply", "-f", str(path))
    assert upd.returncode == 0 and upd.stdout.strip().endswith("configured"), upd.stderr
    hpa = kube_sandbox.get("hpa", "default", "web")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 7 and hpa["metadata"]["generation"] == 2


def test_apply_server_side_creates_and_updates(kube_sandbox: KubeSandbox) -> None:
    path = kube_sandbox.write("hpa.yaml", HPA_YAML.format(max=5))
    out = kube_sandbox.kubectl("apply", "--server-side", "-f", str(path))
    assert out.returncode == 0, out.stderr
    assert "serverside-applied" in out.stdout
    patch = _log(kube_sandbox, "PATCH", "/horizontalpodautoscalers/web")
    assert patch[0]["status"] == 201 and "fieldManager=kubectl" in patch[0]["query"]
    path.write_text(HPA_YAML.format(max=9))
    assert kube_sandbox.kubectl("apply", "--server-side", "-f", str(path)).returncode == 0
    hpa = kube_sandbox.get("hpa", "default", "web")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 9


def test_apply_dry_run_server_persists_nothing(kube_sandbox: KubeSandbox) -> None:
    path = kube_sandbox.write("hpa.yaml", HPA_YAML.format(max=5))
    created = kube_sandbox.kubectl("apply", "--dry-run=server", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert "created (server dry run)" in created.stdout
    assert kube_sandbox.get("hpa", "default", "web") is None
    assert kube_sandbox.kubectl("apply", "-f", str(path)).returncode == 0
    kube_sandbox.settle()
    before = kube_sandbox.get("hpa", "default", "web")
    rv_before = kube_sandbox.store.resource_version
    path.write_text(HPA_YAML.format(max=8))
    for args in (["apply", "--dry-run=server"], ["apply", "--server-side", "--dry-run=server"]):
        out = kube_sandbox.kubectl(*args, "-f", str(path))
        assert out.returncode == 0, out.stderr
        assert "(server dry run)" in out.stdout
    kube_sandbox.settle()
    assert kube_sandbox.get("hpa", "default", "web") == before
    assert kube_sandbox.store.resource_version == rv_before
    assert all("dryRun=All" in r["query"] for r in _log(kube_sandbox, "PATCH", "/horizontalpodautoscalers/web"))


def test_diff_exit_codes(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    path = kube_sandbox.write("hpa.yaml", HPA_YAML.format(max=5))
    assert kube_sandbox.kubectl("apply", "-f", str(path)).returncode == 0
    kube_sandbox.settle()
    same = kube_sandbox.kubectl("diff", "-f", str(path))
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout == ""
    path.write_text(HPA_YAML.format(max=6))
    changed = kube_sandbox.kubectl("diff", "-f", str(path))
    assert changed.returncode == 1, changed.stderr
    assert "-  maxReplicas: 5" in changed.stdout and "+  maxReplicas: 6" in changed.stdout
    hpa = kube_sandbox.get("hpa", "default", "web")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 5


def test_rollout_history_lists_revisions_by_label_selector(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    out = kube_sandbox.kubectl("rollout", "history", "deployment/web")
    assert out.returncode == 0, out.stderr
    lines = [ln.split()[0] for ln in out.stdout.splitlines()[2:] if ln.strip()]
    assert lines == ["1", "2"]
    lists = _log(kube_sandbox, "GET", "/namespaces/default/replicasets")
    assert lists and "labelSelector=app%3Dweb" in lists[-1]["query"]
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None
    rss = kube_sandbox.list_objects("replicaset", "default")
    assert len({rs["metadata"]["uid"] for rs in rss}) == 2
    for rs in rss:
        (ref,) = rs["metadata"]["ownerReferences"]
        assert ref["controller"] is True and ref["uid"] == dep["metadata"]["uid"]


def test_rollout_undo_messages(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", image="nginx:1.25")
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    missing = kube_sandbox.kubectl("rollout", "undo", "deployment/web", "--to-revision=9")
    assert missing.returncode == 1
    assert "error: unable to find specified revision 9 in history" in missing.stderr
    skipped = kube_sandbox.kubectl("rollout", "undo", "deployment/web", "--to-revision=2")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped rollback (current template already matches revision 2)" in skipped.stdout
    undo = kube_sandbox.kubectl("rollout", "undo", "deployment/web")
    assert undo.returncode == 0, undo.stderr
    assert undo.stdout.strip() == "deployment.apps/web rolled back"
    patch = _log(kube_sandbox, "PATCH", "/deployments/web")[-1]
    assert patch["status"] == 200
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    # a deployment whose ReplicaSets are gone has no history
    kube_sandbox.create_deployment("default", "lonely")
    for rs in kube_sandbox.list_objects("replicaset", "default", "app=lonely"):
        kube_sandbox.server.delete("replicaset", "default", rs["metadata"]["name"])
    none = kube_sandbox.kubectl("rollout", "undo", "deployment/lonely")
    assert none.returncode == 1
    assert 'no rollout history found for deployment "lonely"' in none.stderr


def test_delete_hpa_answers_success_status_and_object_is_gone(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.create_hpa("default", "web", "web", 1, 3)
    out = kube_sandbox.kubectl("delete", "hpa", "web")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'horizontalpodautoscaler.autoscaling "web" deleted'
    assert kube_sandbox.get("hpa", "default", "web") is None
    (delete,) = _log(kube_sandbox, "DELETE", "/horizontalpodautoscalers/web")
    assert delete["status"] == 200
    again = kube_sandbox.kubectl("delete", "hpa", "web")
    assert again.returncode == 1
    assert 'Error from server (NotFound): horizontalpodautoscalers.autoscaling "web" not found' in again.stderr


def test_delete_deployment_cascades_to_replicasets(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    assert kube_sandbox.list_objects("replicaset", "default")
    assert kube_sandbox.kubectl("delete", "deployment", "web").returncode == 0
    assert kube_sandbox.list_objects("replicaset", "default") == []


def test_create_and_replace_from_file(kube_sandbox: KubeSandbox) -> None:
    path = kube_sandbox.write("dep.json", json.dumps(_deployment()))
    out = kube_sandbox.kubectl("create", "-f", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "deployment.apps/web created"
    assert "fieldManager=kubectl-create" in _log(kube_sandbox, "POST", "/deployments")[0]["query"]
    dup = kube_sandbox.kubectl("create", "-f", str(path))
    assert dup.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "' in dup.stderr
    assert 'deployments.apps "web" already exists' in dup.stderr
    path.write_text(json.dumps(_deployment(image="nginx:1.27", replicas=4)))
    rep = kube_sandbox.kubectl("replace", "-f", str(path))
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.strip() == "deployment.apps/web replaced"
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 4
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert "fieldManager=kubectl-replace" in _log(kube_sandbox, "PUT", "/deployments/web")[0]["query"]


def test_replace_with_stale_resource_version_conflicts(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    stale = kube_sandbox.get("deployment", "default", "web")
    assert stale is not None
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=2").returncode == 0
    stale["spec"]["replicas"] = 7
    stale.pop("status")
    path = kube_sandbox.write("stale.json", json.dumps(stale))
    out = kube_sandbox.kubectl("replace", "-f", str(path))
    assert out.returncode == 1
    assert "Error from server (Conflict)" in out.stderr
    assert 'Operation cannot be fulfilled on deployments.apps "web": the object has been modified' in out.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["spec"]["replicas"] == 2


def test_create_namespace_from_file_and_objects_in_it(kube_sandbox: KubeSandbox) -> None:
    path = kube_sandbox.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n")
    out = kube_sandbox.kubectl("create", "-f", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "namespace/team-a created"
    cm = kube_sandbox.kubectl("create", "configmap", "cfg", "-n", "team-a", "--from-literal=k=v")
    assert cm.returncode == 0, cm.stderr
    got = kube_sandbox.get("configmap", "team-a", "cfg")
    assert got is not None and got["data"] == {"k": "v"}


def test_not_found_messages(kube_sandbox: KubeSandbox) -> None:
    out = kube_sandbox.kubectl("get", "deployment", "web", "-o", "json")
    assert out.returncode == 1
    assert out.stderr.strip() == 'Error from server (NotFound): deployments.apps "web" not found'
    ns = kube_sandbox.kubectl("get", "deployment", "web", "-n", "nowhere", "-o", "json")
    assert ns.returncode == 1
    assert ns.stderr.strip() == 'Error from server (NotFound): namespaces "nowhere" not found'
    cm = kube_sandbox.kubectl("get", "configmap", "cfg", "-o", "json")
    assert cm.returncode == 1 and 'configmaps "cfg" not found' in cm.stderr
    path = kube_sandbox.write(
        "dep.json", json.dumps({**_deployment(), "metadata": {"name": "web", "namespace": "gone"}})
    )
    create = kube_sandbox.kubectl("create", "-f", str(path))
    assert create.returncode == 1 and 'namespaces "gone" not found' in create.stderr


def test_invalid_body_is_reported_as_invalid(kube_sandbox: KubeSandbox) -> None:
    bad = _deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    path = kube_sandbox.write("bad.json", json.dumps(bad))
    out = kube_sandbox.kubectl("create", "-f", str(path))
    assert out.returncode == 1
    assert 'The Deployment "web" is invalid' in out.stderr or 'Deployment.apps "web" is invalid' in out.stderr
    assert kube_sandbox.get("deployment", "default", "web") is None


def test_leases_and_configmaps_round_trip(kube_sandbox: KubeSandbox) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "plan-lock", "namespace": "default"},
        "spec": {"holderIdentity": "runner-1", "leaseDurationSeconds": 30},
    }
    path = kube_sandbox.write("lease.json", json.dumps(lease))
    assert kube_sandbox.kubectl("create", "-f", str(path)).returncode == 0
    out = kube_sandbox.kubectl("get", "lease", "plan-lock", "-o", "jsonpath={.spec.holderIdentity}")
    assert out.returncode == 0 and out.stdout == "runner-1", out.stderr
    patched = kube_sandbox.kubectl(
        "patch", "lease", "plan-lock", "--type=merge", "-p", '{"spec":{"holderIdentity":"runner-2"}}'
    )
    assert patched.returncode == 0, patched.stderr
    got = kube_sandbox.get("lease", "default", "plan-lock")
    assert got is not None and got["spec"]["holderIdentity"] == "runner-2"


def test_generators_with_protobuf_bodies(kube_sandbox: KubeSandbox) -> None:
    ns = kube_sandbox.kubectl("create", "namespace", "team-b")
    assert ns.returncode == 0, ns.stderr
    assert ns.stdout.strip() == "namespace/team-b created"
    cm = kube_sandbox.kubectl("create", "configmap", "cfg", "-n", "team-b", "--from-literal=a=1", "--from-literal=b=x")
    assert cm.returncode == 0, cm.stderr
    got = kube_sandbox.get("configmap", "team-b", "cfg")
    assert got is not None and got["data"] == {"a": "1", "b": "x"}
    dep = kube_sandbox.kubectl(
        "create", "deployment", "gen", "--image=nginx:1.2", "--replicas=3", "--port=80", "-n", "team-b"
    )
    assert dep.returncode == 0, dep.stderr
    assert dep.stdout.strip() == "deployment.apps/gen created"
    got = kube_sandbox.get("deployment", "team-b", "gen")
    assert got is not None and got["spec"]["replicas"] == 3
    assert got["spec"]["selector"] == {"matchLabels": {"app": "gen"}}
    (container,) = got["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.2" and container["ports"] == [{"containerPort": 80}]
    assert kube_sandbox.revisions("team-b", "gen") == [1]
    sts = kube_sandbox.kubectl("create", "job", "j", "--image=busybox", "-n", "team-b")
    assert sts.returncode == 1


def test_plain_get_prints_table_columns(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=3)
    kube_sandbox.create_hpa("default", "web", "web", 2, 5)
    out = kube_sandbox.kubectl("get", "deploy", "-o", "wide")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    cells = row.split()
    assert cells[:4] == ["web", "3/3", "3", "3"] and cells[-3:] == ["app", "nginx:1.25", "app=web"]
    hpa = kube_sandbox.kubectl("get", "hpa", "web", "--no-headers")
    assert hpa.returncode == 0, hpa.stderr
    assert hpa.stdout.split()[:2] == ["web", "Deployment/web"]


MULTI = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers: [{name: app, image: "cart:1"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data: {a: "1"}
"""


def test_multi_document_apply_and_delete_with_terminating_namespace(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(rollout_delay=0.5)
    path = sb.write("multi.yaml", MULTI)
    out = sb.kubectl("apply", "-f", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "namespace/shop created",
        "deployment.apps/cart created",
        "configmap/cfg created",
    ]
    gone = sb.kubectl("delete", "-f", str(path), "--wait=false")
    assert gone.returncode == 0, gone.stderr
    ns = sb.get("namespace", "", "shop")
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    late = sb.kubectl("create", "configmap", "late", "-n", "shop")
    assert late.returncode == 1 and "because it is being terminated" in late.stderr
    sb.settle()
    assert sb.get("namespace", "", "shop") is None
    assert sb.list_objects("deployment", "shop") == [] and sb.list_objects("replicaset", "shop") == []
    again = sb.kubectl("delete", "namespace", "default")
    assert again.returncode == 1 and "Forbidden" in again.stderr


def test_terminating_namespace_stays_terminating_when_reapplied(
    kube_sandbox_factory: Callable[..., KubeSandbox],
) -> None:
    sb = kube_sandbox_factory(rollout_delay=30)
    path = sb.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {a: b}\n")
    assert sb.kubectl("apply", "-f", str(path)).returncode == 0
    assert sb.kubectl("delete", "namespace", "shop", "--wait=false").returncode == 0
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {a: c}\n")
    assert sb.kubectl("apply", "-f", str(path)).returncode == 0
    ns = sb.get("namespace", "", "shop")
    assert ns is not None and ns["metadata"]["labels"]["a"] == "c"
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    sb.fast_forward()
    assert sb.get("namespace", "", "shop") is None
