"""Running kubectl: argument lists, timeouts and the transient/permanent split.

The messages are kubectl's own (as the sandbox suite observes them); a tiny script stands in for kubectl only
where a message cannot be provoked from the sandbox (a connection refused by nothing, a hanging binary) or an
answer has to be exact (40,000 lines; a shared call that exits 0 without naming its objects).
"""

import stat
import time
from pathlib import Path

import pytest

from core.batch import batches
from core.steps import Step
from integrations.kubectl import Kubectl, KubectlError, KubectlResult, get_items, run
from tasks.kube import run_batch
from tests.fixtures.kube import KubeSandbox


def result(stderr: str, code: int = 1) -> KubectlResult:
    return KubectlResult(("x",), code, "", stderr, 0.0)


@pytest.mark.parametrize("stderr", [
    'Error from server (InternalError): an error on the server ("boom") has prevented the request from succeeding',
    "Error from server (TooManyRequests): the server has received too many requests and has asked us to try again",
    "Error from server (ServiceUnavailable): the server is currently unable to handle the request",
    "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?",
    "Unable to connect to the server: dial tcp 127.0.0.1:1: connect: connection refused",
    "error: unexpected EOF",
    "Unable to connect to the server: net/http: TLS handshake timeout",
    'error: error when creating "STDIN": Post "http://127.0.0.1:1/apis/coordination.k8s.io/v1/namespaces/shop/leases'
    '?timeout=2s": context deadline exceeded',
])
def test_transient_failures(stderr: str) -> None:
    assert result(stderr).transient


@pytest.mark.parametrize("stderr", [
    'Error from server (NotFound): deployments.apps "web" not found',
    'Error from server (Forbidden): deployments.apps "web" is forbidden: User "x" cannot patch',
    'The Deployment "web" is invalid: spec.replicas: Invalid value: -1',
    "error: Expected replicas to be 3, was 4",
    "error: no rollout history found for deployment \"web\"",
])
def test_permanent_failures(stderr: str) -> None:
    assert not result(stderr).transient


def test_message_drops_klog_noise() -> None:
    noisy = ('E1128 10:36:31.122873   29681 memcache.go:265] "Unhandled Error" err="couldn\'t get..."\n'
             "The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    assert result(noisy).message == ("The connection to the server localhost:8080 was refused - did you specify "
                                     "the right host or port?")


def test_runs_real_kubectl_against_the_sandbox(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_namespace("shop")
    kube_sandbox.create_deployment("shop", "web", replicas=2)
    kubectl = Kubectl(binary="/usr/bin/kubectl", env=kube_sandbox.env)
    items = get_items(kubectl, "shop", ["deployments", "horizontalpodautoscalers"])
    assert [(item["kind"], item["metadata"]["name"]) for item in items] == [("Deployment", "web")]
    missing = run(kubectl, "shop", ["scale", "deployment/nope", "--replicas=1"])
    assert not missing.ok and not missing.transient
    assert 'deployments.apps "nope" not found' in missing.message
    assert kube_sandbox.kubectl_invocations() >= 2


def test_a_hanging_kubectl_times_out_as_transient(tmp_path: Path) -> None:
    hang = tmp_path / "kubectl"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(hang.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(KubectlError, match=r"timed out after 0\.5s") as caught:
        run(Kubectl(binary=str(hang), timeout_s=0.5), "ns", ["get", "pods"])
    assert caught.value.transient


def test_a_timeout_also_stops_what_a_kubectl_wrapper_started(tmp_path: Path) -> None:
    """A `KUBECTL` wrapper runs kubectl as its child: killing the wrapper alone left that child writing."""
    wrote = tmp_path / "wrote"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f"#!/bin/sh\nsh -c 'sleep 1.5; touch {wrote}'\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)

    with pytest.raises(KubectlError, match=r"timed out after 0\.5s"):
        run(Kubectl(binary=str(wrapper), timeout_s=0.5), "ns", ["scale", "deployment/web", "--replicas=1"])
    time.sleep(2)

    assert not wrote.exists()


def test_a_missing_binary_is_permanent() -> None:
    with pytest.raises(KubectlError, match="not found") as caught:
        run(Kubectl(binary="/nonexistent/kubectl"), "ns", ["get", "pods"])
    assert not caught.value.transient


def fake_kubectl(tmp_path: Path, script: str) -> Kubectl:
    binary = tmp_path / "kubectl"
    binary.write_text(f"#!/bin/sh\n{script}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return Kubectl(binary=str(binary))


def test_large_output_and_stdin_come_through_whole(tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path, 'cat; i=0; while [ $i -lt 40000 ]; do echo "line $i of the answer"; '
                                     'i=$((i+1)); done; echo done >&2')
    result = run(kubectl, "ns", ["apply", "-f", "-"], stdin="{}\n")
    lines = result.stdout.splitlines()
    assert (lines[0], len(lines), lines[-1], result.stderr) == ("{}", 40001, "line 39999 of the answer", "done\n")


def test_a_shared_call_that_exits_0_did_every_step_whatever_it_printed(tmp_path: Path) -> None:
    """kubectl exits 0 only when every object succeeded; its `-o name` lines are read only after a failure."""
    steps = [Step(n, "action", None, f"deployment/w{n}", ("scale", f"deployment/w{n}", "--replicas=2"), "s")
             for n in (1, 2, 3)]
    (batch,) = batches(steps)

    silent = run_batch.fn("ns", fake_kubectl(tmp_path, "exit 0"), batch)
    partial = run_batch.fn("ns", fake_kubectl(tmp_path, 'echo deployment.apps/w1; echo "error: boom" >&2; exit 1'),
                           batch)

    assert ([s.number for s in silent.done], silent.error) == ([1, 2, 3], None)
    assert ([s.number for s in partial.done], [s.number for s in partial.left], partial.error) == (
        [1], [2, 3], "error: boom")
