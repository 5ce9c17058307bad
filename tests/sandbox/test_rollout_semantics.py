"""Conformance: the deployment/HPA semantics a rollback tool depends on (kubectl-wire.md "Semantics")."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

from sandbox.kube.controllers import HASH_LABEL, REVISION, REVISION_HISTORY
from tests.fixtures.kube import KUBECTL, KubeSandbox, wait_until


def _image(sb: KubeSandbox, name: str = "web") -> str:
    dep = sb.get("deployment", "default", name)
    assert dep is not None
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def _replicas(sb: KubeSandbox, name: str = "web") -> int:
    dep = sb.get("deployment", "default", name)
    assert dep is not None
    return int(dep["spec"]["replicas"])


def test_scale_then_undo_keeps_replicas_and_reverts_template(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2, image="nginx:1.25")
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=5").returncode == 0
    assert kube_sandbox.revisions("default", "web") == [1, 2]
    out = kube_sandbox.kubectl("rollout", "undo", "deployment/web")
    assert out.returncode == 0, out.stderr
    assert _replicas(kube_sandbox) == 5
    assert _image(kube_sandbox) == "nginx:1.25"
    assert kube_sandbox.revisions("default", "web") == [2, 3]


def test_undo_to_revision_1_of_1_2_leaves_2_3(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", image="nginx:1.25")
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    rs1 = next(
        rs for rs in kube_sandbox.list_objects("rs", "default") if rs["metadata"]["annotations"][REVISION] == "1"
    )
    out = kube_sandbox.kubectl("rollout", "undo", "deployment/web", "--to-revision=1")
    assert out.returncode == 0, out.stderr
    assert kube_sandbox.revisions("default", "web") == [2, 3]
    reused = kube_sandbox.get("rs", "default", rs1["metadata"]["name"])
    assert reused is not None and reused["metadata"]["uid"] == rs1["metadata"]["uid"]
    assert reused["metadata"]["annotations"][REVISION] == "3"
    assert reused["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert reused["spec"]["replicas"] == 1
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["metadata"]["annotations"][REVISION] == "3"
    history = kube_sandbox.kubectl("rollout", "history", "deployment/web")
    assert [ln.split()[0] for ln in history.stdout.splitlines()[2:] if ln.strip()] == ["2", "3"]
    # undo again goes back to the image of revision 2, reusing that ReplicaSet too
    assert kube_sandbox.kubectl("rollout", "undo", "deployment/web").returncode == 0
    assert _image(kube_sandbox) == "nginx:1.26"
    assert kube_sandbox.revisions("default", "web") == [3, 4]


def test_undo_drops_annotations_absent_from_target_replicaset(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", image="nginx:1.25")
    # annotations added after the template change land on the new (revision 2) ReplicaSet only
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    assert kube_sandbox.kubectl("annotate", "deployment/web", "team/note=hotfix").returncode == 0
    assert kube_sandbox.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=bump").returncode == 0
    rs2 = next(
        rs for rs in kube_sandbox.list_objects("rs", "default") if rs["metadata"]["annotations"][REVISION] == "2"
    )
    assert rs2["metadata"]["annotations"]["team/note"] == "hotfix"
    rs1 = next(
        rs for rs in kube_sandbox.list_objects("rs", "default") if rs["metadata"]["annotations"][REVISION] == "1"
    )
    assert "team/note" not in rs1["metadata"]["annotations"]
    history = kube_sandbox.kubectl("rollout", "history", "deployment/web")
    assert "bump" in history.stdout
    assert kube_sandbox.kubectl("rollout", "undo", "deployment/web").returncode == 0
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None
    ann = dep["metadata"]["annotations"]
    assert "team/note" not in ann and "kubernetes.io/change-cause" not in ann
    assert ann[REVISION] == "3"


def test_scaling_bumps_generation_but_not_revision(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=1)
    for n in (3, 4, 2):
        assert kube_sandbox.kubectl("scale", "deployment/web", f"--replicas={n}").returncode == 0
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None and dep["metadata"]["generation"] == 4
    assert kube_sandbox.revisions("default", "web") == [1]
    (rs,) = kube_sandbox.list_objects("rs", "default")
    assert rs["spec"]["replicas"] == 2


def test_replicaset_shape_and_annotation_copy(kube_sandbox: KubeSandbox) -> None:
    dep_yaml = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {team/owner: payments}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx:1.25"}]
"""
    out = kube_sandbox.kubectl("apply", "-f", str(kube_sandbox.write("dep.yaml", dep_yaml)))
    assert out.returncode == 0, out.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    (rs,) = kube_sandbox.list_objects("rs", "default")
    assert dep is not None
    h = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == h
    ann = rs["metadata"]["annotations"]
    assert ann["team/owner"] == "payments" and ann[REVISION] == "1"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in ann
    assert ann["deployment.kubernetes.io/desired-replicas"] == "2"
    assert ann["deployment.kubernetes.io/max-replicas"] == "3"


def test_revision_history_limit_bounds_old_replicasets(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", revision_history_limit=2)
    for tag in ("1.26", "1.27", "1.28", "1.29"):
        assert kube_sandbox.kubectl("set", "image", "deployment/web", f"app=nginx:{tag}").returncode == 0
    # like kube-controller-manager, only ReplicaSets whose pods are all gone are cleaned up: wait for the rollout
    assert kube_sandbox.fast_forward()
    assert kube_sandbox.revisions("default", "web") == [3, 4, 5]
    out = kube_sandbox.kubectl("rollout", "undo", "deployment/web", "--to-revision=1")
    assert out.returncode == 1 and "unable to find specified revision 1 in history" in out.stderr


def test_semantic_template_match_ignores_empty_values(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", image="nginx:1.25")
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    patch = [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "resources": {}}]},
            },
        }
    ]
    out = kube_sandbox.kubectl("patch", "deployment/web", "--type=json", "-p", json.dumps(patch))
    assert out.returncode == 0, out.stderr
    assert kube_sandbox.revisions("default", "web") == [2, 3]
    assert len(kube_sandbox.list_objects("rs", "default")) == 2


def test_rollout_status_waits_then_succeeds(kube_sandbox_factory: Callable[..., KubeSandbox]) -> None:
    sb = kube_sandbox_factory(rollout_delay=60)  # the rollout finishes only when the test fast-forwards
    sb.create_deployment("default", "web", replicas=2)
    assert sb.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    dep = sb.get("deployment", "default", "web")
    # maxSurge 25% of 2 rounds up to one new pod, which is not ready yet; maxUnavailable rounds down to 0
    assert dep is not None and (dep["status"]["updatedReplicas"], dep["status"]["availableReplicas"]) == (1, 2)
    proc = subprocess.Popen(
        [KUBECTL, "rollout", "status", "deployment/web", "--timeout=30s"],
        env=sb.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: any("watch=true" in r["query"] for r in sb.requests()), timeout=20)
        assert sb.fast_forward()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert 'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated' in out
    assert out.strip().endswith('deployment "web" successfully rolled out')
    watches = [r for r in sb.requests() if "watch=true" in r["query"]]
    assert "fieldSelector=metadata.name%3Dweb" in watches[0]["query"]


def test_rollout_status_timeout_message(kube_sandbox_factory: Callable[..., KubeSandbox]) -> None:
    sb = kube_sandbox_factory(rollout_delay=30)
    sb.create_deployment("default", "web", wait=False)
    out = sb.kubectl("rollout", "status", "deployment/web", "--timeout=1s")
    assert out.returncode == 1
    assert "error: timed out waiting for the condition" in out.stderr


def test_rollout_status_progress_deadline_message(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    assert kube_sandbox.kubectl("annotate", "deployment/web", "sandbox.infra/stuck=true").returncode == 0
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:bad").returncode == 0
    out = kube_sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=10s")
    assert out.returncode == 1
    assert 'error: deployment "web" exceeded its progress deadline' in out.stderr
    dep = kube_sandbox.get("deployment", "default", "web")
    assert dep is not None
    cond = next(c for c in dep["status"]["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_set_stuck_from_python_and_recovery(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.set_stuck("default", "web")
    assert kube_sandbox.kubectl("set", "image", "deployment/web", "app=nginx:1.26").returncode == 0
    kube_sandbox.settle()
    assert kube_sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=5s").returncode == 1
    kube_sandbox.set_stuck("default", "web", False)
    kube_sandbox.settle()
    out = kube_sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=5s")
    assert out.returncode == 0, out.stderr


def test_hpa_keeps_target_within_bounds(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=3)
    kube_sandbox.create_hpa("default", "web", "web", min_replicas=2, max_replicas=5)
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=10").returncode == 0
    assert wait_until(lambda: _replicas(kube_sandbox) == 5)
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=1").returncode == 0
    assert wait_until(lambda: _replicas(kube_sandbox) == 2)
    kube_sandbox.settle()
    hpa = kube_sandbox.get("hpa", "default", "web")
    assert hpa is not None and hpa["status"]["desiredReplicas"] == 2
    # scaling to zero disables the HPA instead of being undone
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=0").returncode == 0
    kube_sandbox.settle()
    time.sleep(0.15)
    kube_sandbox.settle()
    assert _replicas(kube_sandbox) == 0
    hpa = kube_sandbox.get("hpa", "default", "web")
    assert hpa is not None
    active = next(c for c in hpa["status"]["conditions"] if c["type"] == "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "ScalingDisabled")
    # raising bounds with apply brings a below-min target up
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=1").returncode == 0
    assert (
        kube_sandbox.kubectl("patch", "hpa", "web", "--type=merge", "-p", '{"spec":{"minReplicas":4}}').returncode == 0
    )
    assert wait_until(lambda: _replicas(kube_sandbox) == 4)


def test_statefulset_scale_and_rollout_status(kube_sandbox: KubeSandbox) -> None:
    sts_yaml = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:16"}]
"""
    assert kube_sandbox.kubectl("apply", "-f", str(kube_sandbox.write("sts.yaml", sts_yaml))).returncode == 0
    out = kube_sandbox.kubectl("scale", "statefulset/db", "--replicas=3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "statefulset.apps/db scaled"
    status = kube_sandbox.kubectl("rollout", "status", "statefulset/db", "--timeout=10s")
    assert status.returncode == 0, status.stderr
    sts = kube_sandbox.get("sts", "default", "db")
    assert sts is not None and sts["status"]["readyReplicas"] == 3 and sts["spec"]["replicas"] == 3


def test_server_side_apply_of_replicas_conflicts_with_hpa(kube_sandbox: KubeSandbox) -> None:
    dep_yaml = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 7
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx:1.25"}]
"""
    kube_sandbox.create_deployment("default", "web", replicas=3)
    kube_sandbox.create_hpa("default", "web", "web", min_replicas=2, max_replicas=5)
    path = kube_sandbox.write("dep.yaml", dep_yaml)
    out = kube_sandbox.kubectl("apply", "--server-side", "-f", str(path))
    assert out.returncode == 1
    assert "conflict" in out.stderr and ".spec.replicas" in out.stderr
    assert _replicas(kube_sandbox) == 3
    forced = kube_sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    assert forced.returncode == 0, forced.stderr
    assert wait_until(lambda: _replicas(kube_sandbox) == 5)


def test_hpa_follows_its_current_target_only(kube_sandbox: KubeSandbox) -> None:
    # an HPA written before its target exists takes the target over once it is created
    kube_sandbox.create_hpa("default", "web", "later", min_replicas=2, max_replicas=5)
    kube_sandbox.create_deployment("default", "later", replicas=9)
    assert wait_until(lambda: _replicas(kube_sandbox, "later") == 5)
    # retargeted, it bounds the new target and no longer the old one
    kube_sandbox.create_deployment("default", "other", replicas=3)
    patch = '{"spec":{"scaleTargetRef":{"name":"other"}}}'
    assert kube_sandbox.kubectl("patch", "hpa", "web", "--type=merge", "-p", patch).returncode == 0
    assert kube_sandbox.kubectl("scale", "deployment/later", "--replicas=9").returncode == 0
    assert kube_sandbox.kubectl("scale", "deployment/other", "--replicas=9").returncode == 0
    assert wait_until(lambda: _replicas(kube_sandbox, "other") == 5)
    kube_sandbox.settle()
    assert _replicas(kube_sandbox, "later") == 9
