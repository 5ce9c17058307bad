"""The target's lock, with real kubectl against the sandbox: renewal, expiry, faults, release, loss.

Leases here last 6 s (renewed every 2 s) instead of 60 s, so that expiry can be watched in a test.
"""

import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from core.errors import LeaseLost
from integrations.kubectl import Kubectl, KubectlError, write_bound_s
from integrations.lease import LEASE_NAME, LockTimeout, _lease, _write, acquire, holder_identity, target_lock
from tests.fixtures.kube import KubeSandbox

LEASE_S = 6
LEASE_PATH = rf"/leases/{LEASE_NAME}$"


@pytest.fixture
def kubectl(kube_sandbox: KubeSandbox) -> Kubectl:
    kube_sandbox.create_namespace("shop")
    return Kubectl(binary="/usr/bin/kubectl", env=kube_sandbox.env)


def lease_spec(sandbox: KubeSandbox) -> dict[str, object]:
    lease = sandbox.get("lease", "shop", LEASE_NAME)
    assert lease is not None
    return dict(lease["spec"])


def held_by(sandbox: KubeSandbox, holder: str, duration_s: int = LEASE_S) -> None:
    """A lease that another worker holds, renewed just now."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    sandbox.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": "shop"},
                    "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration_s, "acquireTime": now,
                             "renewTime": now}})


def lease_writes(sandbox: KubeSandbox) -> int:
    return sandbox.count_requests(method="PUT", path_regex=LEASE_PATH)


def lease_requests(sandbox: KubeSandbox) -> dict[str, int]:
    return {method: sandbox.count_requests(method=method, path_regex=path)
            for method, path in (("GET", LEASE_PATH), ("POST", r"/leases$"), ("PUT", LEASE_PATH),
                                 ("DELETE", LEASE_PATH))}


def lease_of(sandbox: KubeSandbox) -> dict[str, object] | None:
    return sandbox.get("lease", "shop", LEASE_NAME)  # type: ignore[no-any-return]


@pytest.fixture
def other_holder(kubectl: Kubectl) -> Iterator[threading.Event]:
    """Another worker (thread) that holds and keeps renewing the lease until the event is set."""
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with target_lock(kubectl, "shop", "other@elsewhere/1", 10, lease_s=LEASE_S):
            held.set()
            release.wait(30)

    worker = threading.Thread(target=hold, daemon=True)
    worker.start()
    assert held.wait(15)
    yield release
    release.set()
    worker.join(15)


def test_the_holder_is_named_by_host_and_process() -> None:
    import os
    assert holder_identity("apply") == f"apply@{socket.gethostname()}/{os.getpid()}"


def test_a_held_lease_is_renewed_at_a_third_of_its_duration_and_released(
        kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        first = lease_spec(kube_sandbox)
        started = time.monotonic()
        deadline = started + 3 * LEASE_S
        while lock.renewals < 2 and time.monotonic() < deadline:
            lock.check()  # never lost on the way: each renewal came before the lease expired
            time.sleep(0.1)
        renewed = lease_spec(kube_sandbox)
        assert time.monotonic() - started < 2 * LEASE_S  # two renewals took far less than two durations
    assert (first["holderIdentity"], first["leaseDurationSeconds"]) == ("me@here/1", LEASE_S)
    assert lock.renewals >= 2 and str(renewed["renewTime"]) > str(first["renewTime"])
    assert renewed["acquireTime"] == first["acquireTime"]
    assert lease_of(kube_sandbox) is None and lock.release_error is None, "a free lock is no Lease"


def test_the_default_lease_is_much_shorter_than_the_seeds_900_s(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    with target_lock(kubectl, "shop", "me@here/1", 10):
        assert lease_spec(kube_sandbox)["leaseDurationSeconds"] == 60


def test_a_lease_on_another_host_is_taken_over_only_after_it_expired(
        kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    held_by(kube_sandbox, "other@elsewhere/1")  # the holder died: nobody renews it
    started = time.monotonic()
    with target_lock(kubectl, "shop", "me@here/1", 15, lease_s=LEASE_S) as lock:
        waited = time.monotonic() - started
        assert lease_spec(kube_sandbox)["holderIdentity"] == "me@here/1"
        lock.check()  # the lease counts from our write, not from when we began to wait
    assert LEASE_S <= waited < LEASE_S + 5


def test_a_live_holder_on_another_host_is_never_taken_over(
        kube_sandbox: KubeSandbox, kubectl: Kubectl, other_holder: threading.Event) -> None:
    with pytest.raises(LockTimeout, match="locked by other@elsewhere/1"):
        acquire(kubectl, "shop", "me@here/1", timeout_s=2 * LEASE_S, poll_s=0.2, lease_s=LEASE_S)
    assert lease_spec(kube_sandbox)["holderIdentity"] == "other@elsewhere/1"


def test_a_dead_holder_on_this_host_is_taken_over_once_its_writes_can_have_landed(
        kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    """Not at once: a write the dead run sent may land up to kubectl's timeout (plus a grace) after it died."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    held_by(kube_sandbox, f"apply@{socket.gethostname()}/{gone.pid}", duration_s=900)
    started = time.monotonic()
    acquire(replace(kubectl, timeout_s=1.0), "shop", "me@here/1", timeout_s=10, poll_s=0.2, lease_s=LEASE_S)
    took = time.monotonic() - started
    assert write_bound_s(replace(kubectl, timeout_s=1.0)) <= took < LEASE_S, took


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 429}, {"drop": True}])
def test_transient_faults_on_acquire_renew_and_release_are_retried(
        kube_sandbox: KubeSandbox, kubectl: Kubectl, fault: dict[str, object]) -> None:
    faults = [kube_sandbox.faults.add(method=method, path_regex=path, count=1, **fault)  # type: ignore[arg-type]
              for method, path in (("POST", r"/leases$"), ("GET", LEASE_PATH))]  # the GET: the renewal's read
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        renewals = kube_sandbox.faults.add(method="PUT", path_regex=LEASE_PATH, count=1, **fault)  # type: ignore[arg-type]
        deadline = time.monotonic() + 2 * LEASE_S
        while lock.renewals < 1 and time.monotonic() < deadline:
            lock.check()  # the renewal's fault was retried before the lease expired
            time.sleep(0.1)
        releases = kube_sandbox.faults.add(method="DELETE", path_regex=LEASE_PATH, count=1, **fault)  # type: ignore[arg-type]
        lock.stop()  # no renewal may take the release's fault
    assert [rule.fired for rule in (*faults, renewals, releases)] == [1, 1, 1, 1]
    assert lock.renewals >= 1 and lock.release_error is None
    assert lease_of(kube_sandbox) is None


def test_a_free_lock_is_taken_with_one_create_and_released_with_one_delete(
        kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    """No read first, either way: the delete carries our last write's resourceVersion as a precondition, so it
    fails (and the release reads) if anyone wrote the lease since; test_a_lease_taken_by_someone_else_is_lost
    is that case."""
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        lock.stop()
        assert lease_requests(kube_sandbox) == {"GET": 0, "POST": 1, "PUT": 0, "DELETE": 0}
    assert lease_requests(kube_sandbox) == {"GET": 0, "POST": 1, "PUT": 0, "DELETE": 1}
    assert lease_of(kube_sandbox) is None and lock.release_error is None


def test_a_role_that_cannot_delete_leases_still_releases_by_writing_it_free(
        kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    """deployments/rbac.yaml from before the lock was deleted on release: the DELETE is Forbidden."""
    kube_sandbox.faults.add(method="DELETE", path_regex=LEASE_PATH, status=403)
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        lock.stop()
    assert lock.release_error is None
    assert lease_spec(kube_sandbox)["holderIdentity"] is None
    with target_lock(kubectl, "shop", "you@here/2", 10, lease_s=LEASE_S):  # a free Lease is taken over at once
        assert lease_spec(kube_sandbox)["holderIdentity"] == "you@here/2"


def test_a_failed_release_is_reported_not_swallowed(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        lock.stop()
        kube_sandbox.faults.add(method="DELETE", path_regex=LEASE_PATH, status=503)
        started = time.monotonic()
    assert time.monotonic() - started < LEASE_S
    assert lock.release_error is not None and "was not released" in lock.release_error
    assert "ServiceUnavailable" in lock.release_error
    assert lease_spec(kube_sandbox)["holderIdentity"] == "me@here/1"


def test_a_lease_taken_by_someone_else_is_lost(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        lease = kube_sandbox.get("lease", "shop", LEASE_NAME)
        assert lease is not None
        lease["spec"]["holderIdentity"] = "thief@elsewhere/2"
        kube_sandbox.kubectl("-n", "shop", "replace", "-f", "-", input=json.dumps(lease), check=True)
        deadline = time.monotonic() + LEASE_S
        with pytest.raises(LeaseLost, match="now held by thief@elsewhere/2"):
            while time.monotonic() < deadline:
                lock.check()
                time.sleep(0.1)
    assert lock.release_error is None  # not ours any more: nothing to release
    assert lease_spec(kube_sandbox)["holderIdentity"] == "thief@elsewhere/2"


def test_a_replace_of_a_lease_deleted_since_is_someone_elses_write(kubectl: Kubectl) -> None:
    """A holder stopped (SIGSTOP) between its renewal's read and its replace resumes after whoever took the lease
    over released it: the replace's 404 means someone else wrote the lease (the renewal then reads it again and
    finds it held by nobody: lost), not a failure to renew (fencing test: the first line names who holds it)."""
    ours = _lease("shop", "me@here/1", "12345", LEASE_S)

    assert _write(kubectl, "shop", "replace", ours, 5) is None


def test_a_lease_that_cannot_be_renewed_is_lost_once_it_expired(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        started = time.monotonic()
        kube_sandbox.faults.add(method="PUT", path_regex=LEASE_PATH, status=500)
        lock.check()
        with pytest.raises(LeaseLost):
            while time.monotonic() - started < 2 * LEASE_S:
                lock.check()
                time.sleep(0.1)
        assert time.monotonic() - started <= LEASE_S + 0.5
    assert lock.release_error is None and lease_of(kube_sandbox) is None, \
        "nobody wrote it since our last write: still ours to delete (a delete needs no renewal)"


def test_no_lock_call_hangs_past_its_timeout(kube_sandbox: KubeSandbox, kubectl: Kubectl) -> None:
    kube_sandbox.faults.add(method="POST", path_regex=r"/leases$", latency_s=30)
    started = time.monotonic()
    # each request times out at kubectl itself (--request-timeout), a second before the call's kill timer. The
    # server commits a write it held that long (as a real one does after its timeout filter answered): when the
    # read that follows comes after that commit, the lease is ours after all and is taken
    try:
        acquire(kubectl, "shop", "me@here/1", timeout_s=3, poll_s=0.2, lease_s=LEASE_S)
    except KubectlError as error:
        assert re.search(r"Client\.Timeout exceeded|timed out|context deadline exceeded", str(error)), error
    else:
        assert (lease_of(kube_sandbox) or {}).get("spec", {}).get("holderIdentity") == "me@here/1"
    assert time.monotonic() - started < 3 + 3 + 1  # the timeout, plus at most one call begun before it


def test_a_holder_past_its_lease_on_its_own_clock_reconfirms_before_it_writes(kube_sandbox: KubeSandbox,
                                                                              kubectl: Kubectl) -> None:
    """As a process stopped (SIGSTOP) past its lease finds on resume: `check()` does not trust the lease, it
    renews it by compare-and-swap first; nobody wrote it since, so it is still ours."""
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        lock._renewed_at -= LEASE_S  # the clock a stopped process finds on resume
        writes = lease_writes(kube_sandbox)
        lock.check()
        assert lease_writes(kube_sandbox) == writes + 1, "re-confirmed by a renewal"
        assert time.monotonic() - lock._renewed_at < LEASE_S / 2


def test_a_holder_past_its_lease_finds_it_taken_at_its_next_check(kube_sandbox: KubeSandbox,
                                                                  kubectl: Kubectl) -> None:
    with target_lock(kubectl, "shop", "me@here/1", 10, lease_s=LEASE_S) as lock:
        lease = kube_sandbox.get("lease", "shop", LEASE_NAME)
        assert lease is not None
        lease["spec"]["holderIdentity"] = "thief@elsewhere/2"
        kube_sandbox.kubectl("-n", "shop", "replace", "-f", "-", input=json.dumps(lease), check=True)
        lock._renewed_at -= LEASE_S
        with pytest.raises(LeaseLost, match="now held by thief@elsewhere/2"):
            lock.check()  # at once, not when the renewal thread gets to it
