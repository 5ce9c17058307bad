"""A per-target lock that works across machines: a coordination.k8s.io Lease in the plan's namespace.

Taking and releasing it are compare-and-swap writes (`replace` carries the resourceVersion that was read), so
two workers, on one Prefect server or two, can never both hold it; a holder that died is taken over once its
lease has expired.
"""

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.kubectl import Kubectl, KubectlError, checked, run

LEASE_NAME = "infra-orchestrator-lock"
LEASE_SECONDS = 900


class LockTimeout(Exception):
    """Another run held the target's lock for longer than we were willing to wait."""


def holder_identity(label: str) -> str:
    return f"{label}@{socket.gethostname()}/{os.getpid()}"


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _holder_is_dead(holder: str) -> bool:
    """A holder on this very machine whose process is gone (killed mid-run) need not be waited for."""
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


def _expired(spec: dict[str, Any]) -> bool:
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    if not spec.get("holderIdentity") or not renewed or _holder_is_dead(spec["holderIdentity"]):
        return True
    renewed_at = datetime.strptime(renewed.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    return datetime.now(UTC) > renewed_at + timedelta(seconds=int(spec.get("leaseDurationSeconds", LEASE_SECONDS)))


def _write(kubectl: Kubectl, namespace: str, verb: str, lease: dict[str, Any]) -> bool:
    """True when the write landed; False when someone else got there first (409 AlreadyExists / Conflict)."""
    result = run(kubectl, namespace, [verb, "-f", "-"], stdin=json.dumps(lease))
    if not result.ok and ("AlreadyExists" in result.stderr or "Conflict" in result.stderr):
        return False
    checked(result)
    return True


def _lease(namespace: str, holder: str | None, resource_version: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": LEASE_NAME, "namespace": namespace}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    now = _micro_now()
    spec = {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS, "acquireTime": now, "renewTime": now}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


def _read(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    result = checked(run(kubectl, namespace, ["get", "lease", LEASE_NAME, "-o", "json", "--ignore-not-found"]))
    return json.loads(result.stdout) if result.stdout.strip() else None


def acquire(kubectl: Kubectl, namespace: str, holder: str, timeout_s: float, poll_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        current = _read(kubectl, namespace)
        if current is None:
            if _write(kubectl, namespace, "create", _lease(namespace, holder, None)):
                return
        else:
            spec = current.get("spec", {})
            if _expired(spec):
                version = current["metadata"]["resourceVersion"]
                if _write(kubectl, namespace, "replace", _lease(namespace, holder, version)):
                    return
            elif time.monotonic() >= deadline:
                raise LockTimeout(f"namespace {namespace} is locked by {spec.get('holderIdentity')} "
                                  f"since {spec.get('acquireTime')}; waited {timeout_s:g}s")
        time.sleep(poll_s)


def release(kubectl: Kubectl, namespace: str, holder: str) -> None:
    """Give the lease up, only if we still hold it."""
    current = _read(kubectl, namespace)
    if current is None or current.get("spec", {}).get("holderIdentity") != holder:
        return
    _write(kubectl, namespace, "replace", _lease(namespace, None, current["metadata"]["resourceVersion"]))


@contextmanager
def target_lock(kubectl: Kubectl, namespace: str, holder: str, timeout_s: float) -> Iterator[None]:
    acquire(kubectl, namespace, holder, timeout_s)
    try:
        yield
    finally:
        with suppress(KubectlError):  # an unreleased lease expires by itself after LEASE_SECONDS
            release(kubectl, namespace, holder)
