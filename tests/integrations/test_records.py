"""Apply records in the cluster (real kubectl, sandbox) and next to the plan: order, size, atomicity, damage.

The sandbox does not enforce the API server's 1 MiB object limit, so the size of every object written is
checked here. Chunking is exercised at the schema's 20,000 actions, and with a small chunk size where a test
needs many writes.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.plan import Plan, ScaleWorkload, Workload
from core.record import ANY_REVISION, ApplyRecord, RecordUnreadable, StepRecord, now, record_name
from core.record_check import RecordCorrupt
from integrations import records
from integrations.kubectl import Kubectl, KubectlError
from integrations.records import RecordConflict
from tests.fixtures.kube import KubeSandbox

REPO = Path(__file__).resolve().parents[2]


def make_plan(directory: Path, namespace: str = "shop", actions: int = 1000) -> Plan:
    """A plan of `actions` scale actions (a record's size is bounded by its plan's)."""
    path = directory / "plan.yaml"
    if not path.exists():
        path.write_text(f"namespace: {namespace}\nactions: []\n")
    scales = tuple(ScaleWorkload(Workload("Deployment", f"web-{number}"), 5) for number in range(1, actions + 1))
    return Plan(path, namespace, None, scales, (), None)


def make_record(plan: Plan, steps: int, status: str = "running", distinct: bool = False) -> ApplyRecord:
    """A record like apply writes: scale steps with before/after states (`distinct` ones barely compress). Its
    revision lets any write replace what is stored: these tests are about layout, not compare-and-swap."""
    def step(number: int) -> StepRecord:
        salt = hashlib.sha256(f"{status}{number}".encode()).hexdigest() if distinct else None
        before = {"replicas": number % 7, "hpa": None}
        spec = {"type": "scale_workload", "kind": "Deployment", "name": f"web-{number}", "replicas": 5}
        return StepRecord(number, "scale_workload", f"deployment/web-{number}",
                          f"kubectl -n {plan.namespace} scale deployment/web-{number} --replicas=5", "succeeded", 1,
                          now(), now(), 12.5, salt, before, {**before, "replicas": 5}, spec)
    return ApplyRecord(str(plan.path), plan.namespace, None, "0" * 64, status, now(),
                       tuple(step(number) for number in range(1, steps + 1)), run_id="run-1",
                       revision=ANY_REVISION)


@pytest.fixture
def cluster(kube_sandbox: KubeSandbox) -> Kubectl:
    kube_sandbox.create_namespace("shop")
    return Kubectl(binary="/usr/bin/kubectl", env=kube_sandbox.env)


def stored_objects(sandbox: KubeSandbox, plan: Plan) -> list[dict[str, Any]]:
    name = record_name(plan)
    return [item for item in sandbox.list_objects("configmap", "shop")
            if item["metadata"]["name"] == name or item["metadata"]["name"].startswith(f"{name}-")]


def test_a_record_round_trips_through_the_cluster_and_the_mirror(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    record = make_record(plan, 3)

    assert records.save(cluster, plan, record).note is None

    (index,) = stored_objects(kube_sandbox, plan)
    assert index["data"] == {"format": "2", "chunks": "0"} and "record.json.gz" in index["binaryData"]
    assert records.read_cluster(cluster, plan) == record
    assert records.read_mirror(plan) == record
    assert records.load(cluster, plan) == (record, f"record read from configmap/{record_name(plan)} in namespace "
                                                   "shop")


def test_a_20000_action_record_round_trips_with_every_object_under_1_mib(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path) -> None:
    plan = make_plan(tmp_path, actions=20_000)
    typical = make_record(plan, 20_000)
    incompressible = make_record(plan, 20_000, status="succeeded", distinct=True)

    for record in (typical, incompressible):
        records.write_cluster(cluster, plan, record)
        objects = stored_objects(kube_sandbox, plan)
        assert max(len(json.dumps(item)) for item in objects) < records.MAX_OBJECT_BYTES
        assert records.read_cluster(cluster, plan) == record

    assert len(objects) >= 3  # an index and at least two chunks: the digests do not compress
    assert len(incompressible.to_json()) > 10 * records.MAX_OBJECT_BYTES  # what one ConfigMap could not hold


def test_only_the_current_generation_of_chunks_is_kept(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "CHUNK_BYTES", 1024)
    plan = make_plan(tmp_path)
    for status in ("running", "succeeded"):
        records.write_cluster(cluster, plan, make_record(plan, 100, status, distinct=True))
    objects = stored_objects(kube_sandbox, plan)
    index = next(item for item in objects if item["metadata"]["name"] == record_name(plan))
    generations = {item["metadata"]["labels"].get(records.GENERATION) for item in objects if item is not index}
    assert generations == {index["data"]["generation"]}
    assert len(objects) == int(index["data"]["chunks"]) + 1 > 3


def test_version_1_records_and_mirrors_are_named_and_never_acted_on(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path) -> None:
    """Issue 23 changes this on purpose: a version-1 record is unsigned, so anyone could have written it."""
    plan = make_plan(tmp_path)
    legacy = json.dumps({**json.loads(make_record(plan, 2).to_json()), "version": 1})
    kube_sandbox.create({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": record_name(plan), "namespace": "shop"},
                         "data": {"record.json": legacy}})
    records.mirror_path(plan).write_text(legacy)
    for read in (records.read_cluster, lambda _, plan: records.read_mirror(plan)):
        with pytest.raises(RecordCorrupt, match=r"a version-1 record .* is not acted on; roll back with the version "
                                                r"of infra-orchestrator that applied it, or with --seed-fallback"):
            read(cluster, plan)


def test_no_record_anywhere_is_none(cluster: Kubectl, tmp_path: Path) -> None:
    assert records.load(cluster, make_plan(tmp_path)) == (None, "no apply record in the cluster or next to the plan")


def test_a_truncated_mirror_is_unreadable_not_absent(cluster: Kubectl, tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    text = make_record(plan, 3).to_json()
    records.mirror_path(plan).write_text(text[: len(text) // 2])
    with pytest.raises(RecordUnreadable) as caught:
        records.load(cluster, plan)
    assert caught.value.where == str(records.mirror_path(plan))
    assert records.load_for_preview(cluster, plan)[0] is None


@pytest.mark.parametrize("damage", ["v1 json", "inline gzip", "missing chunk", "chunk digest"])
def test_a_corrupt_or_partial_configmap_is_unreadable(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        damage: str) -> None:
    monkeypatch.setattr(records, "CHUNK_BYTES", 1024 if "chunk" in damage else records.CHUNK_BYTES)
    plan = make_plan(tmp_path)
    records.write_cluster(cluster, plan, make_record(plan, 50, distinct=True))
    name = record_name(plan)
    index = kube_sandbox.get("configmap", "shop", name)
    assert index is not None
    chunk = f"{name}-{index['data'].get('generation')}-1"
    if damage == "v1 json":
        index = {**index, "data": {"record.json": '{"version": 1, "steps": ['}}
        index.pop("binaryData", None)
    elif damage == "inline gzip":
        index["binaryData"]["record.json.gz"] = index["binaryData"]["record.json.gz"][:100]
    elif damage == "missing chunk":
        kube_sandbox.kubectl("-n", "shop", "delete", "configmap", chunk, check=True)
    else:
        other = kube_sandbox.get("configmap", "shop", f"{name}-{index['data']['generation']}-0")
        assert other is not None
        kube_sandbox.kubectl("-n", "shop", "patch", "configmap", chunk, "--type=merge", "-p",
                             json.dumps({"binaryData": other["binaryData"]}), check=True)
    if damage in ("v1 json", "inline gzip"):
        kube_sandbox.kubectl("-n", "shop", "replace", "-f", "-", input=json.dumps(index), check=True)

    with pytest.raises(RecordUnreadable) as caught:
        records.load(cluster, plan)
    assert caught.value.where == f"configmap/{name} in namespace shop"


def test_the_cluster_is_written_before_the_mirror(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "RETRY_S", 1.0)
    plan = make_plan(tmp_path)
    first = make_record(plan, 2)
    records.save(cluster, plan, first)
    kube_sandbox.faults.add(method="PUT", path_regex=r"/configmaps/", status=500)
    with pytest.raises(KubectlError):
        records.save(cluster, plan, make_record(plan, 2, status="succeeded"))
    assert records.read_mirror(plan) == first  # the mirror never runs ahead of the cluster


def test_transient_faults_on_record_calls_are_retried(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "CHUNK_BYTES", 1024)
    plan = make_plan(tmp_path)
    record = make_record(plan, 30, distinct=True)
    rules = [kube_sandbox.faults.add(method=method, path_regex=r"/configmaps", count=1, **fault)
             for method, fault in (("POST", {"drop": True}), ("PUT", {"status": 503}), ("GET", {"status": 429}),
                                   ("DELETE", {"status": 500}))]
    records.write_cluster(cluster, plan, make_record(plan, 30, status="old", distinct=True))
    records.write_cluster(cluster, plan, record)
    assert records.read_cluster(cluster, plan) == record
    assert [rule.fired for rule in rules] == [1, 1, 1, 1]


SAVE_IN_A_READ_ONLY_DIRECTORY = """
import json, sys
from pathlib import Path
from core.record import ANY_REVISION, from_json
from dataclasses import replace
from integrations import records
from integrations.kubectl import Kubectl
from tests.integrations.test_records import make_plan
plan_path, record_path, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
plan = make_plan(Path(plan_path).parent)
record = replace(from_json(Path(record_path).read_text()), revision=ANY_REVISION)
print(records.save(Kubectl(binary="/usr/bin/kubectl", env=env), plan, record).note)
"""


def test_a_mirror_that_cannot_be_written_is_a_note_after_the_cluster_record(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path) -> None:
    """A read-only directory: a read-only bind mount (root ignores file modes), or the mode when not root."""
    directory = tmp_path / "plans"
    directory.mkdir()
    plan = make_plan(directory)
    record = make_record(plan, 4)
    saved = tmp_path / "record.json"
    saved.write_text(record.to_json())
    command = [sys.executable, "-c", SAVE_IN_A_READ_ONLY_DIRECTORY, str(plan.path), str(saved),
               json.dumps(kube_sandbox.env)]
    if os.geteuid() == 0:
        command = ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{directory}" "{directory}" && exec "$@"',
                   "sh", *command]
    else:
        directory.chmod(0o555)
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    directory.chmod(0o755)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"could not write the local record mirror {records.mirror_path(plan)} (")
    assert "the cluster record is current" in completed.stdout and "Traceback" not in completed.stderr
    assert not records.mirror_path(plan).exists()
    assert records.read_cluster(cluster, plan) == record


def test_a_reader_during_writes_sees_the_old_or_the_new_record_never_a_mix(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "CHUNK_BYTES", 512)
    plan = make_plan(tmp_path)
    versions = [make_record(plan, 20, status=f"v{number}", distinct=True) for number in range(6)]
    records.write_cluster(cluster, plan, versions[0])
    # each index replace takes half a second: a reader certainly runs while a write is half done
    kube_sandbox.faults.add(method="PUT", path_regex=rf"/configmaps/{record_name(plan)}$", latency_s=0.5)
    seen: list[str] = []
    failures: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                found = records.read_cluster(cluster, plan)
                assert found in versions, "a record that was never written"
                seen.append(found.status if found else "none")
            except Exception as error:  # every failure is the test's failure
                failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    for version in versions[1:]:
        records.write_cluster(cluster, plan, version)
    done.set()
    reader.join(60)

    assert failures == []
    assert len(seen) >= 3 and seen == sorted(seen)  # old, then new: never back, never a mix


WRITE_IN_A_PROCESS = """
import sys
from pathlib import Path
from core.record import ANY_REVISION, from_json
from dataclasses import replace
from integrations import records
from integrations.kubectl import Kubectl
from tests.integrations.test_records import make_plan
import json
records.CHUNK_BYTES = 512
plan = make_plan(Path(sys.argv[1]).parent)
records.write_cluster(Kubectl(binary="/usr/bin/kubectl", env=json.loads(sys.argv[3])), plan,
                      replace(from_json(Path(sys.argv[2]).read_text()), revision=ANY_REVISION))
"""


def test_a_writer_killed_between_its_chunks_and_the_index_leaves_the_old_record(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "CHUNK_BYTES", 512)
    plan = make_plan(tmp_path)
    old, new, later = (make_record(plan, 20, status=status, distinct=True) for status in ("old", "new", "later"))
    records.write_cluster(cluster, plan, old)
    saved = tmp_path / "new.json"
    saved.write_text(new.to_json())
    kube_sandbox.faults.add(method="PUT", path_regex=rf"/configmaps/{record_name(plan)}$", latency_s=30)
    writer = subprocess.Popen([sys.executable, "-c", WRITE_IN_A_PROCESS, str(plan.path), str(saved),
                               json.dumps(kube_sandbox.env)], cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(stored_objects(kube_sandbox, plan)) <= len(records.cluster_objects(plan, old, "x")):
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)  # its index replace is on the wire now, held by the server
    finally:
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()
    kube_sandbox.faults.clear()

    assert records.read_cluster(cluster, plan) == old
    records.write_cluster(cluster, plan, later)
    assert records.read_cluster(cluster, plan) == later
    assert len(stored_objects(kube_sandbox, plan)) == len(records.cluster_objects(plan, later, "x"))


def test_the_stored_size_per_step(tmp_path: Path) -> None:
    """The figure behind the layout: a step is hundreds of bytes of JSON, tens once gzipped (-s prints them)."""
    plan = make_plan(tmp_path)
    record = make_record(plan, 1000)
    per_step = len(record.to_json(compact=True)) / 1000
    gzipped = sum(len(item.get("binaryData", {}).get("record.json.gz", "")) for item in
                  records.cluster_objects(plan, record, "x")) * 3 / 4 / 1000
    assert 300 < per_step < 1200 and gzipped < per_step / 10, (per_step, gzipped)
    print(f"record size per step: {per_step:.0f} B of JSON, {gzipped:.0f} B gzipped")


def test_record_writes_are_compare_and_swap_on_the_revision_last_seen(
        kube_sandbox: KubeSandbox, cluster: Kubectl, tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    first = replace(make_record(plan, 2), revision=None, pr=7)
    created = records.write_cluster(cluster, plan, first)
    ours = records.write_cluster(cluster, plan, replace(first, status="succeeded", revision=created.revision))
    assert created.revision and ours.revision and ours.revision != created.revision
    assert records.read_cluster(cluster, plan).revision == ours.revision  # type: ignore[union-attr]

    records.write_cluster(cluster, plan, replace(first, pr=8, run_id="other-run", revision=ours.revision))

    with pytest.raises(RecordConflict, match=r"written by someone else since this run last read it; it now holds "
                                             r"the record of PR #8 \(run other-run, status running\)"):
        records.write_cluster(cluster, plan, replace(first, status="failed", revision=ours.revision))
    with pytest.raises(RecordConflict):
        records.write_cluster(cluster, plan, replace(first, revision=None))  # a create where one exists
    assert records.read_cluster(cluster, plan).pr == 8  # type: ignore[union-attr]
