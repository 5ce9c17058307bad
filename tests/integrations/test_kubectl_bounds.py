"""Every kubectl call is bounded on its own: a request timeout the server sees, a kill timer that counts only a
kubectl still running, no kubectl outliving the process that started it, and a write killed by a signal read back.

Real kubectl against the sandbox; the process that runs it is a small Python child here, so that it can be
stopped (SIGSTOP) or killed (SIGKILL) while kubectl is under way.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from integrations.kubectl import LATE_WRITE_GRACE_S, Kubectl, KubectlError, KubectlResult, checked, run
from tests.fixtures.kube import KubeSandbox

ROOT = Path(__file__).resolve().parents[2]
SCALE = r"/deployments/web/scale$"


@pytest.fixture
def kubectl(kube_sandbox: KubeSandbox) -> Kubectl:
    kube_sandbox.create_namespace("shop")
    kube_sandbox.create_deployment("shop", "web", replicas=2)
    return Kubectl(binary="/usr/bin/kubectl", env=kube_sandbox.env, timeout_s=3.0)


def runner(sandbox: KubeSandbox, args: list[str], timeout_s: float) -> subprocess.Popen[str]:
    """A Python process that runs one kubectl call through `run` and prints its outcome as JSON."""
    script = f"""
import json
from integrations.kubectl import Kubectl, KubectlError, run
kubectl = Kubectl(binary="/usr/bin/kubectl", env={sandbox.env!r}, timeout_s={timeout_s})
try:
    result = run(kubectl, "shop", {args!r})
    print(json.dumps({{"exit": result.exit_code, "stderr": result.stderr}}))
except KubectlError as error:
    print(json.dumps({{"error": str(error)}}))
"""
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def scale_patches(sandbox: KubeSandbox) -> list[dict[str, object]]:
    return [r for r in sandbox.requests() if r["method"] == "PATCH" and r["path"].endswith("/web/scale")]


def test_each_request_carries_a_timeout_within_the_calls(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    """A write held at the server: kubectl gives up on it at its request timeout, the server ends its handling
    there too (committing what it received), and the call returns once that write had time to land."""
    kube_sandbox.faults.add(method="PATCH", path_regex=SCALE, latency_s=30, count=1)
    started = time.monotonic()
    result = run(kubectl, "shop", ["scale", "deployment/web", "--replicas=3"])
    took = time.monotonic() - started

    assert took < kubectl.timeout_s + LATE_WRITE_GRACE_S, took
    assert result.ok or result.maybe_landed, "a write whose answer never came may have landed"
    assert all(f"timeout={kubectl.timeout_s - 1:g}s" in r["query"] for r in scale_patches(kube_sandbox)), \
        "the server is told each request's bound"
    assert kube_sandbox.get("Deployment", "shop", "web")["spec"]["replicas"] == 3, "landed within the bound"


def test_a_kubectl_never_outlives_the_process_that_started_it(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    """The OOM killer ends the Python process alone: its kubectl, retrying 429s, must end with it."""
    kube_sandbox.faults.add(method="PATCH", path_regex=SCALE, status=429, retry_after=1)
    parent = runner(kube_sandbox, ["scale", "deployment/web", "--replicas=3"], timeout_s=60)
    try:
        wait_for(lambda: len(scale_patches(kube_sandbox)) >= 2)
        orphans = children(parent.pid)
        assert orphans, "kubectl runs under the Python process"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: not any(alive(pid) for pid in orphans), timeout_s=2)
        seen = len(scale_patches(kube_sandbox))
        time.sleep(2.5)  # longer than the Retry-After between the 429 loop's retries
        assert len(scale_patches(kube_sandbox)) == seen, "no request from the orphan after its parent died"
        assert time.monotonic() - killed_at < 10
    finally:
        for pid in children(parent.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_call_that_ended_while_this_process_was_stopped_is_not_a_timeout(kube_sandbox: KubeSandbox,
                                                                             kubectl: Kubectl) -> None:
    """SIGSTOP while kubectl's write waits at the server; kubectl finishes meanwhile; after SIGCONT, past the
    kill timer's due time, the call is the success it was (not a timeout whose retry writes again)."""
    kube_sandbox.faults.add(method="PATCH", path_regex=SCALE, latency_s=1.0, count=1)
    process = runner(kube_sandbox, ["scale", "deployment/web", "--replicas=3"], timeout_s=3)
    wait_for(lambda: bool(children(process.pid)) and kube_sandbox.count_requests(method="GET") > 1)
    process.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: any(r["status"] == 200 for r in scale_patches(kube_sandbox)))
        time.sleep(3.5)  # past the call's 3 s limit
    finally:
        process.send_signal(signal.SIGCONT)
    out, _ = process.communicate(timeout=20)
    assert json.loads(out) == {"exit": 0, "stderr": ""}, out
    assert len(scale_patches(kube_sandbox)) == 1


def test_a_write_whose_kubectl_was_killed_may_have_landed(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    """kubectl killed (exit -9) after its PATCH reached the server: read back, never a plain failure."""
    kube_sandbox.faults.add(method="PATCH", path_regex=SCALE, answer_late_s=5, count=1)
    outcome: list[KubectlResult] = []
    call = threading.Thread(target=lambda: outcome.append(
        run(kubectl, "shop", ["scale", "deployment/web", "--replicas=3"], timeout_s=20)))
    call.start()
    wait_for(lambda: bool(scale_patches(kube_sandbox)))
    for pid in children(os.getpid()):
        if "kubectl" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGKILL)
    call.join(20)

    result = outcome[0]
    assert result.exit_code == -signal.SIGKILL and result.killed
    assert kube_sandbox.get("Deployment", "shop", "web")["spec"]["replicas"] == 3, "the write landed"
    with pytest.raises(KubectlError) as raised:
        checked(result)
    assert raised.value.maybe_landed and raised.value.transient, "read back and confirmed, like a timeout"


@pytest.mark.parametrize("code", [-9, -15, 137, 143])
def test_a_write_killed_by_a_signal_is_maybe_landed_and_a_read_is_not(code: int) -> None:
    write = KubectlResult(("-n", "shop", "scale", "deployment/web"), code, "", "", 0.0)
    read = KubectlResult(("-n", "shop", "get", "deployment/web"), code, "", "", 0.0, reads_only=True)
    assert write.maybe_landed and write.transient
    assert not read.maybe_landed and read.transient
    assert KubectlResult(("x",), 1, "", "", 0.0).maybe_landed is False
