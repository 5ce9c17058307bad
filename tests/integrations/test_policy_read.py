"""The live read the policy checks ride on, with real kubectl against the sandbox: one `kubectl get` for the
workloads, HPAs and policy objects; a Role that cannot list the policy objects yields what it could read and an
item that says so (the checks then report it); any other failure is raised as before."""

from pathlib import Path

import pytest

from core.policy import UNREAD_KIND
from integrations.kubectl import Kubectl, KubectlError
from integrations.policy_read import get_with_policy
from tests.fixtures.kube import KubeSandbox


def _as_user(sb: KubeSandbox, resources: list[str]) -> Kubectl:
    for obj in (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "shop"},
         "rules": [{"apiGroups": ["apps", "autoscaling", ""], "resources": resources, "verbs": ["list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "r", "namespace": "shop"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
         "subjects": [{"kind": "User", "name": "bob"}]},
    ):
        sb.server.create(obj)
    sb.server.add_token("bob-token", "bob")
    config = sb.server.write_kubeconfig(Path(sb.tmp) / "bob.kubeconfig", token="bob-token")
    return Kubectl(binary="/usr/bin/kubectl", env={**sb.env, "KUBECONFIG": str(config)})


def _seed(sb: KubeSandbox) -> None:
    sb.create_namespace("shop")
    sb.create_deployment("shop", "web", replicas=2)
    sb.server.create({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "shop"},
                      "spec": {"hard": {"pods": "5"}}})


def test_one_kubectl_get_reads_workloads_and_policy_objects(kube_sandbox: KubeSandbox) -> None:
    _seed(kube_sandbox)
    kubectl = Kubectl(binary="/usr/bin/kubectl", env=kube_sandbox.env)
    items = get_with_policy(kubectl, "shop", ["deployments", "horizontalpodautoscalers"])
    assert [(item["kind"], item["metadata"]["name"]) for item in items] == [("Deployment", "web"),
                                                                            ("ResourceQuota", "q")]
    assert kube_sandbox.kubectl_invocations("kubectl get") == 1


def test_a_role_without_the_policy_rules_reads_the_rest_and_says_what_it_could_not(
        kube_sandbox: KubeSandbox) -> None:
    _seed(kube_sandbox)
    kubectl = _as_user(kube_sandbox, ["deployments", "horizontalpodautoscalers", "limitranges"])
    items = get_with_policy(kubectl, "shop", ["deployments", "horizontalpodautoscalers"])
    assert [item["kind"] for item in items] == ["Deployment", UNREAD_KIND]
    assert items[-1]["resources"] == ["resourcequotas", "poddisruptionbudgets"]


def test_a_role_that_cannot_list_the_workloads_still_fails_the_read(kube_sandbox: KubeSandbox) -> None:
    _seed(kube_sandbox)
    kubectl = _as_user(kube_sandbox, ["resourcequotas"])
    with pytest.raises(KubectlError, match="Forbidden"):
        get_with_policy(kubectl, "shop", ["deployments", "horizontalpodautoscalers"])
