"""SIGTERM and SIGINT through the CLI: before the lock a run stops at once in one line, having changed nothing;
while it holds the lock it stops after its writes in flight (tests/execution/test_fencing.py for SIGTERM)."""

import re
import signal
from datetime import UTC, datetime

import pytest

from core.vocabulary import RecordStatus
from tests.execution.conftest import NAMESPACE, World
from tests.execution.test_fencing import (
    WEB_SCALE,
    cluster_record,
    finish,
    kubectl_running,
    last_seq,
    start,
    wait_for,
    writes_since,
)

OTHER_HOLDER = "infra-apply PR #99@elsewhere/1"


def hold_the_lock_elsewhere(world: World) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    world.kube.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "infra-orchestrator-lock", "namespace": NAMESPACE},
                       "spec": {"holderIdentity": OTHER_HOLDER, "leaseDurationSeconds": 3600, "acquireTime": now,
                                "renewTime": now}}, NAMESPACE)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_waiting_for_the_lock_stops_the_run_in_one_line(
        world: World, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, code: int) -> None:
    """Another run holds the lock; the apply waits for it and is told to stop: it stops within a poll, with one
    line and the signal's exit code, and nothing was changed (no Prefect 'Crash detected!')."""
    hold_the_lock_elsewhere(world)
    started = last_seq(world)
    holder = start(world, "apply")
    wait_for(lambda: any(r["method"] == "POST" and r["path"].endswith("/leases") and r["status"] == 409
                         for r in world.kube.requests()), holder, "the apply waits for the lock")
    holder.send_signal(sig)
    out, err = finish(holder, timeout_s=60)

    assert holder.returncode == code, out + err[-3000:]
    assert out.strip().splitlines()[-2:] == [
        f"error: stopped by {sig.name} before taking the lock: nothing was changed", "failed"], out
    assert "Crash detected" not in err and "Traceback" not in out + err, err[-3000:]
    assert [w for w in writes_since(world, started) if "/leases" not in w] == []
    assert world.replicas("web") == 2 and cluster_record(world, monkeypatch) is None
    lease = world.kube.get("Lease", NAMESPACE, "infra-orchestrator-lock")
    assert lease is not None and lease["spec"]["holderIdentity"] == OTHER_HOLDER


def test_sigint_mid_write_stops_after_the_write_lands_with_exit_130(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the scale waits at the server: the run takes no new step, lets the scale land, saves its
    record (with the scale done, for a rerun to resume), releases the lock and exits 130 with one line."""
    world.kube.faults.add(method="PUT", path_regex=WEB_SCALE, latency_s=4, count=1)
    holder = start(world, "apply")
    wait_for(lambda: kubectl_running(holder, "scale"), holder, "the scale was sent")
    holder.send_signal(signal.SIGINT)
    out, err = finish(holder)

    assert holder.returncode == 130, out + err[-3000:]
    assert re.fullmatch(r"error: stopped by SIGINT after \d of 3 steps; record infra-record-\w+ is consistent",
                        out.strip().splitlines()[-2]) and out.strip().endswith("failed"), out
    assert "Traceback" not in out + err
    assert world.replicas("web") == 4, "the write in flight landed"
    record = cluster_record(world, monkeypatch)
    assert record is not None and record.status == RecordStatus.RUNNING, "an interrupted apply: a rerun resumes it"
    assert record.steps[0].status == "succeeded"
    assert world.kube.get("Lease", NAMESPACE, "infra-orchestrator-lock") is None, "the lock was released"
