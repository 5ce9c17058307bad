"""A paused Deployment as the real deployment controller keeps it, and the pods listing as kubectl prints it, with
real kubectl against the sandbox."""

import json

from tests.fixtures.kube import KubeSandbox

NS = "shop"


def deployment(sandbox: KubeSandbox) -> dict:  # type: ignore[type-arg]
    found = sandbox.get("Deployment", NS, "web")
    assert found is not None
    return found  # type: ignore[no-any-return]


def progressing(sandbox: KubeSandbox) -> tuple[str, str]:
    condition = next(c for c in deployment(sandbox)["status"]["conditions"] if c["type"] == "Progressing")
    return condition["status"], condition["reason"]


def test_a_paused_deployment_rolls_nothing_out_but_scales(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_namespace(NS)
    kube_sandbox.create_deployment(NS, "web", replicas=2)
    kube_sandbox.kubectl("-n", NS, "rollout", "pause", "deployment/web", check=True)
    kube_sandbox.settle()
    assert progressing(kube_sandbox) == ("Unknown", "DeploymentPaused")

    kube_sandbox.kubectl("-n", NS, "set", "image", "deployment/web", "*=nginx:1.27", check=True)
    kube_sandbox.settle()
    assert kube_sandbox.revisions(NS, "web") == [1], "a paused deployment's new template makes no ReplicaSet"
    status = deployment(kube_sandbox)["status"]
    assert status["observedGeneration"] == deployment(kube_sandbox)["metadata"]["generation"]
    assert status["updatedReplicas"] == 0, "no pod runs the new template"
    waiting = kube_sandbox.kubectl("-n", NS, "rollout", "status", "deployment/web", "--timeout=1s")
    assert waiting.returncode != 0 and "0 out of 2 new replicas have been updated" in waiting.stdout + waiting.stderr

    kube_sandbox.kubectl("-n", NS, "scale", "deployment/web", "--replicas=3", check=True)
    kube_sandbox.settle()
    replica_sets = kube_sandbox.list_objects("ReplicaSet", NS)
    assert [rs["spec"]["replicas"] for rs in replica_sets] == [3], "scaling still works while paused"
    assert deployment(kube_sandbox)["status"]["replicas"] == 3
    assert progressing(kube_sandbox) == ("Unknown", "DeploymentPaused")

    kube_sandbox.kubectl("-n", NS, "rollout", "resume", "deployment/web", check=True)
    kube_sandbox.settle()
    assert kube_sandbox.revisions(NS, "web") == [1, 2], "resumed, the new template rolls out"
    done = kube_sandbox.kubectl("-n", NS, "rollout", "status", "deployment/web", "--timeout=10s")
    assert done.returncode == 0, done.stderr


def test_the_pods_listing_has_the_columns_kubectl_prints(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_namespace(NS)
    kube_sandbox.create_deployment(NS, "web", replicas=1)
    kube_sandbox.settle()

    listed = kube_sandbox.kubectl("-n", NS, "get", "pods", check=True).stdout.splitlines()
    assert listed[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    name, ready, status, restarts, _ = listed[1].split()
    assert name.startswith("web-") and (ready, status, restarts) == ("1/1", "Running", "0")
    wide = kube_sandbox.kubectl("-n", NS, "get", "pods", "-o", "wide", check=True).stdout.splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    table = json.loads(kube_sandbox.kubectl("-n", NS, "get", "--raw", f"/api/v1/namespaces/{NS}/pods",
                                            check=True).stdout)
    assert table["kind"] == "PodList", "a plain JSON read is unchanged"
