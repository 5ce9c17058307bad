"""A run that lost its lock writes nothing more; a kubectl never outlives its CLI; a killed write is read back.

Through the CLI with real kubectl against the sandbox. Leases last 6 s here (INFRA_LEASE_SECONDS), so that a
stopped holder's lease expires within a test; the sandbox's fault rules hold a request at the server so that the
holder can be stopped (SIGSTOP) or killed at a known point of its run.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

from core.plan import load_plan
from core.record import STAMP_FIELD_MANAGER, ApplyRecord
from core.vocabulary import RecordStatus
from integrations.kubectl import Kubectl
from integrations.records import read_cluster
from tests.execution.conftest import NAMESPACE, PLAN_PATH, REPO, World
from tests.execution.test_scenarios import by_action

SHORT_LEASE = {"INFRA_LEASE_SECONDS": "6"}
WEB_SCALE = r"/deployments/web/scale$"


def start(world: World, flow: str, *args: str, **env: str) -> subprocess.Popen[str]:
    world.label("execute-plan" if flow == "apply" else "rollback-plan")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / f"infra-{flow}"), f"--plan={PLAN_PATH}", "--execute",
         f"--pr={world.pr}", *args],
        cwd=world.root, env={**world.env, **SHORT_LEASE, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)


def finish(cli: subprocess.Popen[str], timeout_s: float = 240) -> tuple[str, str]:
    try:
        return cli.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(cli.pid, signal.SIGKILL)
        raise


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    found, index = [pid], 0
    while index < len(found):
        found += parents.get(found[index], [])
        index += 1
    return found[1:]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kubectl_running(cli: subprocess.Popen[str], *words: str) -> list[int]:
    return [pid for pid in descendants(cli.pid) if "kubectl" in cmdline(pid)
            and all(f" {word} " in f" {cmdline(pid)} " for word in words)]


def wait_for(condition: Callable[[], object], cli: subprocess.Popen[str], what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert cli.poll() is None, f"the CLI ended before {what}: {cli.communicate()}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def writes_since(world: World, seq: int, *, leases: bool = False) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in world.kube.requests() if r["seq"] > seq
            and r["method"] in ("POST", "PUT", "PATCH", "DELETE") and (leases or "/leases" not in r["path"])]


def last_seq(world: World) -> int:
    return max((r["seq"] for r in world.kube.requests()), default=0)


def cluster_record(world: World, monkeypatch: pytest.MonkeyPatch, plan: str = PLAN_PATH) -> ApplyRecord | None:
    monkeypatch.chdir(world.root)
    return read_cluster(Kubectl(env=world.kube.env), load_plan(Path(plan)))


def test_a_holder_stopped_mid_write_writes_nothing_after_a_rollback_took_over(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGSTOP while the scale waits at the server; a rollback takes the expired lock and restores; on SIGCONT the
    old run neither rewrites the record nor re-sends the scale (its kill timer, due while it was stopped, finds
    kubectl finished), and says it lost the lock."""
    world.kube.faults.add(method="PUT", path_regex=WEB_SCALE, latency_s=4, count=1)
    holder = start(world, "apply", INFRA_KUBECTL_TIMEOUT="10")
    wait_for(lambda: kubectl_running(holder, "scale"), holder, "the scale was sent")
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        world.label("rollback-plan")
        restored = world.cli("rollback", "--execute", f"--pr={world.pr}", **SHORT_LEASE)
        time.sleep(1)
        after_rollback = last_seq(world)
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    out, err = finish(holder)

    assert restored.returncode == 0 and restored.stdout.rstrip().endswith("succeeded"), restored.stdout
    assert writes_since(world, after_rollback) == [], "the old holder wrote after the rollback"
    record = cluster_record(world, monkeypatch)
    assert record is not None and record.status == RecordStatus.ROLLED_BACK
    assert world.replicas("web") == 2 and world.hpa("web") is None
    assert holder.returncode == 1, out + err
    assert out.splitlines()[0].startswith("error: lease infra-orchestrator-lock in namespace shop is now held by")
    assert "this run lost the lock and stopped before its next write" in out and "Traceback" not in out, out


def test_a_holder_stopped_before_its_first_change_does_not_write_after_another_run(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGSTOP while the stamp (before the first record save and the first wave) waits at the server; another
    plan applies under the lock meanwhile; on SIGCONT the first run saves no record and changes nothing."""
    canary = "ops/plans/infra-scale/canary/plan.yaml"
    (world.root / canary).parent.mkdir(parents=True)
    (world.root / canary).write_text(f"namespace: {NAMESPACE}\nactions:\n  - {{type: scale_workload, name: api, "
                                     "replicas: 3}\n")
    other_pr = world.github.open_pr(REPO, head="infra-scale/canary", author="alice",
                                    files={canary: (world.root / canary).read_text()})
    world.github.add_label(REPO, other_pr, "execute-plan", "alice")
    world.kube.faults.add(method="PATCH", field_manager=STAMP_FIELD_MANAGER, latency_s=3, count=1)
    holder = start(world, "apply")
    wait_for(lambda: kubectl_running(holder, "patch"), holder, "the stamp was sent")
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        other = world.cli("apply", "--execute", f"--pr={other_pr}", f"--plan={canary}", **SHORT_LEASE)
        time.sleep(4)  # the stamp has landed
        resumed = last_seq(world)
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    out, err = finish(holder)

    assert other.returncode == 0, other.stdout + other.stderr
    assert writes_since(world, resumed) == [], "the stopped run wrote after it resumed"
    assert cluster_record(world, monkeypatch) is None, "no record saved without the lock"
    assert world.replicas("web") == 2 and world.replicas("api") == 3
    assert cluster_record(world, monkeypatch, canary) is not None
    assert holder.returncode == 1 and "this run lost the lock" in out, out + err


def test_a_cli_killed_alone_leaves_no_kubectl_writing(world: World) -> None:
    """The OOM killer ends the CLI's Python process only: its kubectl, in a 429 loop, dies with it, and the write
    it was retrying never lands (the fault is cleared right after the kill: an orphan's next retry would land)."""
    world.kube.faults.add(method="PUT", path_regex=WEB_SCALE, status=429, retry_after=1)
    holder = start(world, "apply")
    wait_for(lambda: world.kube.count_requests(method="PUT", path_regex=WEB_SCALE) >= 2, holder,
             "the scale got 429s")
    orphans = kubectl_running(holder, "scale")
    assert orphans
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    world.kube.faults.clear()
    killed = last_seq(world)
    try:
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in orphans) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in orphans), "kubectl outlived its CLI"
        time.sleep(2)  # longer than the Retry-After between the loop's tries
        assert [w for w in writes_since(world, killed) if "/scale" in w] == []
        assert world.replicas("web") == 2
    finally:
        for pid in orphans:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_kubectl_killed_after_its_write_reached_the_server_is_read_back(world: World) -> None:
    """kubectl killed (exit -9) while the server holds the answer of a scale it already committed: the step is
    confirmed by a read, not failed, and not sent again."""
    world.kube.faults.add(method="PUT", path_regex=WEB_SCALE, answer_late_s=10, count=1)
    holder = start(world, "apply")
    wait_for(lambda: world.kube.count_requests(method="PUT", path_regex=WEB_SCALE), holder, "the scale landed")
    for pid in kubectl_running(holder, "scale"):
        os.kill(pid, signal.SIGKILL)
    out, err = finish(holder)

    assert holder.returncode == 0, out + err
    assert world.replicas("web") == 4
    assert world.kube.count_requests(method="PUT", path_regex=WEB_SCALE) == 1, "not sent again"
    assert by_action(out)["scale_workload"]["attempts"] == 2, "confirmed by the retry's read"


def test_sigterm_mid_write_stops_after_the_write_lands_and_a_waiting_rollback_restores_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (a worker shutting down, a cancelled deployment run) while the scale waits at the server and a
    rollback waits for the lock: the run takes no new step, lets the scale land, saves its record, releases the
    lock and exits 143 with one line; the rollback then finds the scale in the record and undoes it."""
    world.kube.faults.add(method="PUT", path_regex=WEB_SCALE, latency_s=25, count=1)  # the waiter starts
    holder = start(world, "apply")
    wait_for(lambda: kubectl_running(holder, "scale"), holder, "the scale was sent")
    waiter = start(world, "rollback")
    wait_for(lambda: any(r["method"] == "POST" and r["path"].endswith("/leases") and r["status"] == 409
                         for r in world.kube.requests()), waiter, "the rollback waits for the lock")
    holder.send_signal(signal.SIGTERM)
    out, err = finish(holder)
    waited, waited_err = finish(waiter)

    assert holder.returncode == 143, out + err[-3000:]
    record = cluster_record(world, monkeypatch)
    assert record is not None
    assert re.fullmatch(r"error: stopped by SIGTERM after 2 of 3 steps; record infra-record-\w+ is consistent",
                        out.strip().splitlines()[-2]) and out.strip().endswith("failed"), out
    assert "Crash detected" not in err
    assert waiter.returncode == 0 and waited.rstrip().endswith("succeeded"), waited + waited_err[-3000:]
    assert record.status == RecordStatus.ROLLED_BACK
    assert world.replicas("web") == 2 and world.hpa("web") is None
    assert world.resources("api")["limits"] == {"cpu": "200m"}


def test_a_scale_that_raced_another_writer_fails_rather_than_overwrite_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer scales web between the apply's read (the prior state it records) and its scale: the scale
    carries the replicas read as `--current-replicas`, so it fails with kubectl's precondition error, as a
    rollback's does, and the other writer's count stays."""
    world.kube.faults.add(method="PATCH", field_manager=STAMP_FIELD_MANAGER, latency_s=3, count=1)
    holder = start(world, "apply")
    wait_for(lambda: kubectl_running(holder, "patch"), holder, "the stamp was sent (after the read)")
    world.kube.kubectl("-n", NAMESPACE, "scale", "deployment/web", "--replicas=7", check=True)
    out, err = finish(holder)

    assert holder.returncode == 1, out + err[-3000:]
    scale = by_action(out)["scale_workload"]
    assert scale["status"] == "failed" and scale["attempts"] == 1, scale
    assert scale["error"] == "error: Expected replicas to be 2, was 7", scale
    assert scale["command"] == f"kubectl -n {NAMESPACE} scale deployment/web --replicas=4 --current-replicas=2"
    assert world.replicas("web") == 7, "the other writer's count was overwritten"
    assert world.resources("api")["limits"] == {"cpu": "600m"}
    record = cluster_record(world, monkeypatch)
    assert record is not None and record.status == RecordStatus.FAILED
    assert record.steps[0].before == {"replicas": 2, "hpa": None}
    assert "Traceback" not in out + err
