"""The fixture API other suites build on: environment isolation, seeding helpers, request accounting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.fixtures.kube import KubeSandbox


def test_environment_is_isolated_per_sandbox(kube_sandbox_factory: Callable[..., KubeSandbox]) -> None:
    a, b = kube_sandbox_factory(), kube_sandbox_factory()
    assert a.url != b.url and a.url.startswith("http://127.0.0.1:")
    for sb in (a, b):
        cfg = yaml.safe_load(sb.kubeconfig.read_text())
        assert cfg["clusters"][0]["cluster"]["server"] == sb.url
        assert cfg["contexts"][0]["context"]["namespace"] == "default"
        assert sb.env["KUBECONFIG"] == str(sb.kubeconfig)
        assert Path(sb.env["HOME"]).is_dir() and sb.env["KUBECACHEDIR"].startswith(str(sb.tmp))
    assert a.env["KUBECACHEDIR"] != b.env["KUBECACHEDIR"]
    a.create_deployment("default", "only-in-a")
    assert b.kubectl("get", "deploy", "only-in-a", "-o", "name").returncode == 1
    assert a.kubectl("get", "deploy", "only-in-a", "-o", "name").stdout.strip() == "deployment.apps/only-in-a"
    assert Path(a.env["KUBECACHEDIR"], "discovery").is_dir()


def test_seeding_helpers_and_state(kube_sandbox: KubeSandbox) -> None:
    dep = kube_sandbox.create_deployment("team", "api", replicas=3, image="api:7", annotations={"owner": "x"})
    assert kube_sandbox.get("namespace", "", "team") is not None
    assert dep["status"]["availableReplicas"] == 3 and dep["metadata"]["annotations"]["owner"] == "x"
    assert kube_sandbox.revisions("team", "api") == [1]
    (rs,) = kube_sandbox.list_objects("rs", "team", "app=api")
    assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "api:7"
    hpa = kube_sandbox.create_hpa("team", "api", "api", 1, 2)
    assert hpa["spec"]["maxReplicas"] == 2
    assert kube_sandbox.settle()
    live = kube_sandbox.get("deploy", "team", "api")
    assert live is not None and live["spec"]["replicas"] == 2  # the HPA clamped 3 to its max


def test_request_accounting(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    assert kube_sandbox.kubectl("get", "deploy", "web", "-o", "json").returncode == 0
    assert kube_sandbox.kubectl("scale", "deploy/web", "--replicas=2").returncode == 0
    assert kube_sandbox.kubectl("scale", "deploy/web", "--replicas=3").returncode == 0
    assert kube_sandbox.kubectl_invocations() == 3
    assert kube_sandbox.kubectl_invocations("kubectl scale") == 2
    assert kube_sandbox.count_requests("PATCH", r"/scale$", "kubectl scale") == 2
    records = kube_sandbox.requests()
    assert all(r["duration_s"] >= 0 and r["status"] for r in records)
    last = records[-1]["seq"]
    assert kube_sandbox.requests(since=last) == []
    kube_sandbox.clear_requests()
    assert kube_sandbox.kubectl_invocations() == 0
