"""Conformance: what an OnDelete StatefulSet's status shows when it is scaled after a template change (issue 13
item 8 verifies such StatefulSets from status). The real controller (newVersionedStatefulSetPod) creates a pod
from the update revision unless a RollingUpdate partition says otherwise, so under OnDelete the existing pods
keep the old template and the new one gets the new template, even though the API's comment on OnDelete says
currentRevision (kubernetes/kubernetes#138780 corrects that comment)."""

from tests.fixtures.kube import KubeSandbox

OLD = {"requests": {"cpu": "100m"}}
NEW = {"requests": {"cpu": "12"}}  # more than the sandbox node's 8 CPUs


def test_a_scaled_on_delete_statefulset_creates_the_new_pod_from_the_update_revision(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "updateStrategy": {"type": "OnDelete"},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "postgres:16", "resources": OLD}]}}}})
    kube_sandbox.fast_forward()
    assert kube_sandbox.kubectl("set", "resources", "statefulset/db", "-c=db", "--requests=cpu=12").returncode == 0
    assert kube_sandbox.kubectl("scale", "statefulset/db", "--replicas=2").returncode == 0
    kube_sandbox.fast_forward()

    pods = {p["metadata"]["name"]: p for p in kube_sandbox.list_objects("pods", "default", "app=db")}
    assert {name: pod["spec"]["containers"][0]["resources"] for name, pod in pods.items()} == {"db-0": OLD,
                                                                                              "db-1": NEW}
    scheduled = next(c for c in pods["db-1"]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (pods["db-1"]["status"]["phase"], scheduled["reason"]) == ("Pending", "Unschedulable")
    sts = kube_sandbox.get("sts", "default", "db")
    assert sts is not None
    status = sts["status"]
    assert (status["observedGeneration"], sts["metadata"]["generation"]) == (3, 3)
    assert (status["replicas"], status["readyReplicas"], status["currentReplicas"], status["updatedReplicas"]) == \
        (2, 1, 1, 1)
    assert status["currentRevision"] != status["updateRevision"]
    assert pods["db-1"]["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"]
