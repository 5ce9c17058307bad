"""A per-target lock that works across machines: a coordination.k8s.io Lease in the plan's namespace.

Every write is a compare-and-swap (`create`, or a `replace` or delete that carries the resourceVersion read or
written last), so two workers, on one Prefect server or two, can never both hold it. A free lock is no Lease at
all: the holder deletes it on release, so that taking a free lock is one `create`. The holder renews it from a
background thread every third of its duration (60 s), so a long run keeps it and a dead holder's lease frees
within a minute.

Expiry is judged as client-go's leader election judges it, on the waiting side's own clock: a lease is expired
once we have seen it unchanged (same resourceVersion) for its whole duration, whatever the clocks of the two
hosts say. A holder on this very machine whose process is gone is taken over once the writes it may have had in
flight have landed (its kubectl died with it, and each request is bounded: `write_bound_s`). Acquire, renew and
release retry transient failures with backoff, every call has a timeout, and a release that failed is reported on
the handle (`release_error`), never swallowed.

The holder fences itself: `check()`, before each of its writes, says whether the lease is still surely its own.
A waiter takes the lease over no sooner than a whole duration after our last renewal landed, so on our own clock
the lease is ours until (last renewal sent + duration), less the time a write begun now may take to land. Past
that point (a process stopped by SIGSTOP and resumed, a renewal thread starved) the holder re-confirms with a
compare-and-swap renewal before it writes, and a lease that someone else wrote since is lost.
"""

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from core.conventions import LEASE_NAME, Env
from core.errors import LeaseLost, Stopped, TemporaryError
from integrations.kubectl import (
    Kubectl,
    KubectlError,
    KubectlResult,
    checked,
    retry_transient,
    run,
    write_bound_s,
)
from integrations.stopping import asked_before_lock, stop_on_signals, taking_lock

LEASE_SECONDS = int(os.environ.get(Env.LEASE_SECONDS) or 60)
"""The lease's duration; INFRA_LEASE_SECONDS shortens it where expiry must be watched (tests, the chaos bench)."""


class LockTimeout(TemporaryError):
    """Another run held the target's lock for longer than we were willing to wait."""


def holder_identity(label: str) -> str:
    """`<label>@<host>/<pid>`: who holds the lock, and how a waiter on the same host can tell it died."""
    return f"{label}@{socket.gethostname()}/{os.getpid()}"


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _holder_is_dead(holder: str) -> bool:
    """A holder on this very machine whose process is gone (killed mid-run): its lease need not expire, but the
    writes it had in flight must be given time to land first (see `acquire`)."""
    host, _, pid = holder.rpartition("@")[2].partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _call_timeout(lease_s: float, kubectl: Kubectl) -> float:
    """Each lock call must end well within the lease, so that a renewal can be retried before it expires."""
    return min(kubectl.timeout_s, max(3.0, lease_s / 4))


def _read(kubectl: Kubectl, namespace: str, timeout_s: float) -> dict[str, Any] | None:
    result = checked(run(kubectl, namespace, ["get", "lease", LEASE_NAME, "-o", "json", "--ignore-not-found"],
                         timeout_s=timeout_s))
    try:
        return json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        raise KubectlError(f"lease {LEASE_NAME} did not come back as JSON", transient=True) from None


def _someone_else_wrote(result: KubectlResult) -> bool:
    """409: a precondition (resourceVersion) that no longer holds."""
    return not result.ok and ("Conflict" in result.stderr or "the object has been modified" in result.stderr)


def _write(kubectl: Kubectl, namespace: str, verb: str, lease: dict[str, Any], timeout_s: float) -> str | None:
    """The resourceVersion the write left ("" if kubectl did not print it); None when someone else got there
    first (409 AlreadyExists / Conflict, or a replace answered 404: whoever took the lease over released it
    since)."""
    result = run(kubectl, namespace, [verb, "-f", "-", "-o", "jsonpath={.metadata.resourceVersion}"],
                 stdin=json.dumps(lease), timeout_s=timeout_s)
    gone = verb == "replace" and "NotFound" in result.stderr
    if _someone_else_wrote(result) or (not result.ok and ("AlreadyExists" in result.stderr or gone)):
        return None
    return checked(result).stdout.strip()


def _delete(kubectl: Kubectl, namespace: str, version: str, timeout_s: float) -> bool:
    """Delete the lease only if it is still at `version` (a precondition, sent through `delete --raw`, as plain
    `kubectl delete` cannot carry one): True when it is gone, False when someone wrote it since (409)."""
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": version}}
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE_NAME}"
    result = run(kubectl, namespace, ["delete", "--raw", path, "-f", "-"], stdin=json.dumps(options),
                 timeout_s=timeout_s)
    if result.ok or "NotFound" in result.stderr:
        return True
    if _someone_else_wrote(result):
        return False
    return checked(result).ok  # the delete failed: raises its KubectlError


def _lease(namespace: str, holder: str | None, resource_version: str | None, lease_s: int,
           acquired_at: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": LEASE_NAME, "namespace": namespace}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    now = _micro_now()
    spec = {"holderIdentity": holder, "leaseDurationSeconds": lease_s, "acquireTime": acquired_at or now,
            "renewTime": now}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


@dataclass
class _Observation:
    """The lease version a waiter saw, and since when (its own monotonic clock): the basis of expiry; and the
    version at which it first saw the holder dead, and since when."""

    version: str | None = None
    since: float = 0.0
    dead_version: str | None = None
    dead_since: float = 0.0

    def unchanged_for(self, version: str) -> float:
        if version != self.version:
            self.version, self.since = version, time.monotonic()
        return time.monotonic() - self.since

    def dead_for(self, version: str | None, dead: bool) -> float:
        """How long the holder has been seen dead at this `version` (0 when it is not)."""
        if not dead or self.dead_version != version:  # first seen dead at this version: from now on
            self.dead_version, self.dead_since = (version if dead else None), time.monotonic()
        return time.monotonic() - self.dead_since if dead else 0.0


@dataclass
class _Taking:
    """One attempt to take the lease: its calls share their bounds, and it remembers when it last wrote."""

    kubectl: Kubectl
    namespace: str
    holder: str
    lease_s: int
    unreachable_s: float
    sent: float = field(default_factory=time.monotonic)

    @property
    def call_s(self) -> float:
        return _call_timeout(self.lease_s, self.kubectl)

    def read(self) -> dict[str, Any] | None:
        return retry_transient(partial(_read, self.kubectl, self.namespace, self.call_s),
                               time.monotonic() + self.unreachable_s)

    def write(self, verb: str, version: str | None) -> "LeaseHandle | None":
        """Write the lease as ours (`create`, or `replace` of `version`); None when someone else wrote first.
        Re-sending a write that landed after all is safe: it carries the version it replaced, so it fails with a
        Conflict, and the next read finds us holding the lease."""
        self.sent = time.monotonic()
        lease = _lease(self.namespace, self.holder, version, self.lease_s)
        written = retry_transient(partial(_write, self.kubectl, self.namespace, verb, lease, self.call_s),
                                  time.monotonic() + self.unreachable_s)
        return None if written is None else self.held(str(lease["spec"]["acquireTime"]), written)

    def held(self, acquired_at: str, version: str) -> "LeaseHandle":
        return LeaseHandle(self.kubectl, self.namespace, self.holder, self.lease_s, acquired_at,
                           _renewed_at=self.sent, _version=version)


def _takeable(current: dict[str, Any] | None, observed: _Observation, kubectl: Kubectl, lease_s: int) -> bool:
    """Whether the lease read (`current`) may be written as ours: it is free, its holder died and what it had in
    flight has had time to land, or it stayed unchanged for its whole duration (expired on our clock)."""
    if current is None:
        return True
    spec = current.get("spec", {})
    other = spec.get("holderIdentity")
    version = str(current["metadata"]["resourceVersion"])
    # A write the dead holder had in flight may still land after it died (an API server commits what it
    # received, answered or not): taken over at once, this run would read the object before that write
    # landed and send it a second time.
    dead_for = observed.dead_for(version, bool(other and _holder_is_dead(other)))
    if not other or dead_for >= write_bound_s(kubectl):
        return True
    return observed.unchanged_for(version) >= float(spec.get("leaseDurationSeconds") or lease_s)


def acquire(kubectl: Kubectl, namespace: str, holder: str, timeout_s: float, poll_s: float = 1.0,
            lease_s: int = LEASE_SECONDS) -> "LeaseHandle":
    """Take the lease, waiting up to `timeout_s` for its holder to release it or let it expire.

    Returns the handle, not yet renewing (`start()` it). Raises LockTimeout when the lease stayed held.
    Transient failures are retried for at most a third of the lease (a cluster that cannot be reached for that
    long fails the run at once rather than after the whole lock timeout), then raise as the KubectlError they
    are.
    """
    deadline = time.monotonic() + timeout_s
    taking = _Taking(kubectl, namespace, holder, lease_s, unreachable_s=min(timeout_s, lease_s / 3))
    observed = _Observation()
    # A free lock is no Lease (`release` deletes it): try to create it first, and read only if it is there.
    asked_before_lock()
    handle = taking.write("create", None)
    while handle is None:
        asked_before_lock()
        current = taking.read()
        spec = (current or {}).get("spec", {})
        if current is not None and spec.get("holderIdentity") == holder:  # our own earlier write landed after all
            return taking.held(str(spec.get("acquireTime")), str(current["metadata"]["resourceVersion"]))
        if _takeable(current, observed, kubectl, lease_s):
            version = None if current is None else str(current["metadata"]["resourceVersion"])
            asked_before_lock()
            handle = taking.write("create" if current is None else "replace", version)
            continue  # taken, or lost the race: read again
        if time.monotonic() >= deadline:
            raise LockTimeout(f"namespace {namespace} is locked by {spec.get('holderIdentity')} since "
                              f"{spec.get('acquireTime')}; waited {timeout_s:g}s")
        time.sleep(max(0.01, min(poll_s, deadline - time.monotonic())))
    return handle


def release(kubectl: Kubectl, namespace: str, holder: str, lease_s: int = LEASE_SECONDS,
            version: str | None = None) -> None:
    """Give the lease up, only if we still hold it: delete it on condition that it is still at `version` (our
    last write's), which fails if anyone wrote it since; then read it, and if it is still ours, delete it at the
    version read. A Role from before leases could be deleted (403) gets the lease written free instead.
    Transient failures are retried for a third of the lease's duration (the time a renewal may take, too); then
    the last one raises."""
    deadline = time.monotonic() + lease_s / 3
    call_s = _call_timeout(lease_s, kubectl)
    while True:
        if version is None:
            current = retry_transient(partial(_read, kubectl, namespace, call_s), deadline)
            if current is None or current.get("spec", {}).get("holderIdentity") != holder:
                return
            version = str(current["metadata"]["resourceVersion"])
        try:
            if retry_transient(partial(_delete, kubectl, namespace, version, call_s), deadline):
                return
        except KubectlError as error:
            if "Forbidden" not in str(error):
                raise
            freed = _lease(namespace, None, version, lease_s)
            if retry_transient(partial(_write, kubectl, namespace, "replace", freed, call_s), deadline) is not None:
                return
        version = None  # someone wrote it since: read it again
        if time.monotonic() >= deadline:
            raise KubectlError(f"lease {LEASE_NAME} kept changing while it was released", transient=True)


@dataclass
class LeaseHandle:
    """The held lock: renewed in the background; `check()` before each step says whether it is still ours."""

    kubectl: Kubectl
    namespace: str
    holder: str
    lease_s: int
    acquired_at: str
    renewals: int = 0
    release_error: str | None = None
    """Set after the with-block when the lease could not be released (it then expires by itself)."""
    _renewed_at: float = field(default_factory=time.monotonic)
    _version: str | None = None
    """The lease's resourceVersion after our last write: what the release swaps against."""
    _lost: str | None = None
    _stop_requested: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _confirming: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _releasing: threading.Thread | None = None
    _release_failure: Exception | None = None

    def check(self) -> None:
        """Raise LeaseLost when the lease is no longer surely ours: another holder took it (the renewal thread
        found out), or it is past the point where a write begun now could still land before a takeover, and a
        compare-and-swap renewal, made now, does not confirm it."""
        if self._lost is not None:
            raise LeaseLost(self._lost)
        if time.monotonic() < self._valid_until():
            return
        with self._confirming:
            if self._lost is None and time.monotonic() >= self._valid_until():
                self._confirm()
        if self._lost is not None:
            raise LeaseLost(self._lost)

    def request_stop(self, signal_name: str) -> None:
        """The run was asked to stop (integrations.stopping): `proceed()` says so before the next wave."""
        self._stop_requested = self._stop_requested or signal_name

    def proceed(self) -> None:
        """`check()`, then raise Stopped if the run was asked to stop: before each wave of changes."""
        self.check()
        if self._stop_requested is not None:
            raise Stopped(self._stop_requested)

    def _valid_until(self) -> float:
        """Our lease's end on our clock, less what a write begun now may take to land (at most a third of the
        lease: the renewal thread renews every third, so a holder that kept renewing never re-confirms)."""
        return self._renewed_at + self.lease_s - min(write_bound_s(self.kubectl), self.lease_s / 3)

    def _confirm(self) -> None:
        """Renew now, from the caller's thread; a lease someone else wrote since, or one that cannot be renewed
        before it expires, is lost."""
        unrenewed = time.monotonic() - self._renewed_at
        if self._stop.is_set():
            self._lost = f"lease {LEASE_NAME} in namespace {self.namespace} was let go"
            return
        try:
            self._renewed_at = retry_transient(self._renew, self._renewed_at + self.lease_s)
        except LeaseLost as error:
            self._lost = f"{error} (this run's last renewal was {unrenewed:.0f}s ago)"
        except KubectlError as error:
            self._lost = (f"lease {LEASE_NAME} in namespace {self.namespace} was not renewed for {unrenewed:.0f}s "
                          f"and could not be confirmed before it expired: {error}")

    def let_go(self) -> None:
        """Stop renewing and release the lease, in a thread of its own; `released()` waits for it."""
        if self._releasing is None:
            self._releasing = threading.Thread(target=self._release, name=f"lease-release-{self.namespace}",
                                               daemon=True)
            self._releasing.start()

    def released(self) -> None:
        """Let go (if not yet) and wait until the release is done; `release_error` then says if it failed."""
        self.let_go()
        assert self._releasing is not None
        self._releasing.join()
        if self._release_failure is not None:
            raise self._release_failure

    def _release(self) -> None:
        self.stop()
        try:
            release(self.kubectl, self.namespace, self.holder, lease_s=self.lease_s, version=self._version)
        except KubectlError as error:
            self.release_error = (f"lease {LEASE_NAME} in namespace {self.namespace} was not released ({error}); "
                                  f"it expires by itself {self.lease_s}s after its last renewal")
        except Exception as error:  # raised where the block ends, as when the release ran there
            self._release_failure = error

    def start(self) -> None:
        self._thread = threading.Thread(target=self._keep_renewed, name=f"lease-{self.namespace}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(_call_timeout(self.lease_s, self.kubectl) + 1)

    def _keep_renewed(self) -> None:
        while not self._stop.wait(max(0.0, self._renewed_at + self.lease_s / 3 - time.monotonic())):
            expires = self._renewed_at + self.lease_s
            try:
                with self._confirming:
                    self._renewed_at = retry_transient(self._renew, expires)
                self.renewals += 1
            except LeaseLost as error:
                self._lost = str(error)
                return
            except KubectlError as error:
                self._lost = (f"lease {LEASE_NAME} in namespace {self.namespace} could not be renewed before it "
                              f"expired: {error}")
                return

    def _renew(self) -> float:
        """One compare-and-swap renewal; returns when it was sent (the lease counts from then)."""
        if self._stop.is_set():
            return self._renewed_at
        call_s = _call_timeout(self.lease_s, self.kubectl)
        sent = time.monotonic()
        current = _read(self.kubectl, self.namespace, call_s)
        other = (current or {}).get("spec", {}).get("holderIdentity")
        if current is None or other != self.holder:
            raise LeaseLost(f"lease {LEASE_NAME} in namespace {self.namespace} is now held by {other or 'nobody'}")
        lease = _lease(self.namespace, self.holder, current["metadata"]["resourceVersion"], self.lease_s,
                       self.acquired_at)
        written = _write(self.kubectl, self.namespace, "replace", lease, call_s)
        if written is None:
            raise KubectlError("the lease changed while it was renewed", transient=True)  # read again
        self._version = written
        return sent


@contextmanager
def target_lock(kubectl: Kubectl, namespace: str, holder: str, timeout_s: float,
                lease_s: int = LEASE_SECONDS) -> Iterator[LeaseHandle]:
    """Hold the target's lease for the with-block; the handle's `check()` raises LeaseLost once it is lost.
    SIGTERM and SIGINT during the block ask the run to stop (`proceed()` raises Stopped) rather than end it; while
    the lease is being taken, they end the wait with Stopped (nothing was changed).

    The block may let the lease go before its end (`let_go()`); the end waits for the release either way.
    After the block, `release_error` says whether releasing failed; it never raises for that.
    """
    taking_lock()
    handle = acquire(kubectl, namespace, holder, timeout_s, lease_s=lease_s)
    handle.start()
    try:
        with stop_on_signals(handle.request_stop):
            yield handle
    finally:
        handle.released()
