"""Where apply records live: ConfigMaps in the plan's namespace (any worker can read them later, as Helm keeps
release records in the cluster), mirrored next to the plan file when run locally.

The cluster copy is the source of truth and is written first; the mirror after it, and a mirror that cannot be
written (full or read-only disk) is a note, never an error. A record is gzipped into `binaryData`; one of any
plan size the schema allows (20,000 actions: about 20 MB of JSON) fits that way, or else is split:

- an index ConfigMap, named `record_name(plan)`, holds the record inline when its gzip fits one object, or
  names a generation, its chunk count and digest;
- chunk ConfigMaps `<index>-<generation>-<i>` hold the pieces, each object well under the API server's 1 MiB.

A write creates the new generation's chunks, then replaces the index in one call (the atomic switch), then
deletes older generations. A reader takes the index, then lists its generation's chunks in one LIST (one
resourceVersion); when they are incomplete it reads the index again, and only if that did not change is the
record unreadable. So a reader sees the old record or the new one, never a mix, wherever a writer is killed.

Version-1 records (one ConfigMap with `data.record.json`) and mirrors are still read.
"""

import base64
import gzip
import hashlib
import json
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from core.plan import Plan
from core.record import ApplyRecord, RecordUnreadable, from_json, record_name
from integrations.files import write_atomically
from integrations.kubectl import Kubectl, KubectlError, checked, retry_transient, run
from integrations.secrets import mask

LEGACY_KEY = "record.json"
"""Version 1: the record as JSON text in `data`."""
GZIP_KEY = "record.json.gz"
FORMAT = "2"
MANAGED_BY = {"app.kubernetes.io/managed-by": "infra-orchestrator"}
CHUNK_OF = "infra-orchestrator/record-chunk-of"
GENERATION = "infra-orchestrator/generation"
MAX_OBJECT_BYTES = 1024 * 1024
"""The API server refuses larger objects (etcd's request limit)."""
CHUNK_BYTES = 700 * 1024
"""Gzip bytes per object: 933 KiB once base64-encoded, leaving room for metadata under MAX_OBJECT_BYTES."""
RETRY_S = 30.0
"""How long one record read or write retries transient failures."""
_CONSISTENT_READS = 5
"""Index reads before a record whose chunks never match its index is called unreadable."""


def mirror_path(plan: Plan) -> Path:
    return plan.path.with_name(f"{plan.path.stem}.record.json")


def read_mirror(plan: Plan) -> ApplyRecord | None:
    """The mirrored record; None when there is no file. Raises RecordUnreadable for a file that is not a
    whole record (truncated by a crash or a full disk, or edited)."""
    path = mirror_path(plan)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise RecordUnreadable(str(path), str(error)) from None
    try:
        return from_json(text)
    except ValueError as error:
        raise RecordUnreadable(str(path), str(error)) from None


def _labels(kind: str) -> dict[str, str]:
    return {**MANAGED_BY, "infra-orchestrator/record": kind}


def cluster_objects(plan: Plan, record: ApplyRecord, generation: str) -> list[dict[str, Any]]:
    """The ConfigMaps that store `record`: its chunks (none when it fits inline), then the index, last."""
    name = record_name(plan)
    blob = gzip.compress(mask(record.to_json(compact=True)).encode(), compresslevel=6, mtime=0)
    index: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": plan.namespace, "labels": _labels("apply"),
                     "annotations": {"infra-orchestrator/plan": record.plan}},
        "data": {"format": FORMAT, "chunks": "0"},
    }
    if len(blob) <= CHUNK_BYTES:
        index["binaryData"] = {GZIP_KEY: base64.b64encode(blob).decode()}
        return [index]
    pieces = [blob[start:start + CHUNK_BYTES] for start in range(0, len(blob), CHUNK_BYTES)]
    index["data"] = {"format": FORMAT, "generation": generation, "chunks": str(len(pieces)),
                     "sha256": hashlib.sha256(blob).hexdigest()}
    chunks = [{"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": f"{name}-{generation}-{number}", "namespace": plan.namespace,
                            "labels": {**_labels("chunk"), CHUNK_OF: name, GENERATION: generation},
                            "annotations": {"infra-orchestrator/chunk": str(number)}},
               "binaryData": {GZIP_KEY: base64.b64encode(piece).decode()}}
              for number, piece in enumerate(pieces)]
    return [*chunks, index]


def _create_chunks(kubectl: Kubectl, namespace: str, chunks: list[dict[str, Any]]) -> None:
    """Create this generation's chunks. Re-sent after a lost answer, the ones that landed say AlreadyExists:
    a fresh generation's names are ours alone, and their content is the same, so that counts as done."""
    stdin = "\n".join(json.dumps(chunk) for chunk in chunks) + "\n"
    result = run(kubectl, namespace, ["create", "-f", "-"], stdin=stdin)
    posts = [exchange.status for exchange in result.requests if exchange.method == "POST"]
    if not result.ok and len(posts) == len(chunks) and set(posts) <= {201, 409}:
        return
    checked(result)


def _replace_or_create(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    """Replace unconditionally (repeating it is harmless), or create when there was nothing to replace."""
    stdin = json.dumps(manifest)
    result = run(kubectl, namespace, ["replace", "-f", "-"], stdin=stdin)
    if not result.ok and "NotFound" in result.stderr:
        result = run(kubectl, namespace, ["create", "-f", "-"], stdin=stdin)
        if not result.ok and "AlreadyExists" in result.stderr:
            result = run(kubectl, namespace, ["replace", "-f", "-"], stdin=stdin)
    checked(result)


def write_cluster(kubectl: Kubectl, plan: Plan, record: ApplyRecord) -> str | None:
    """Store the record so that readers switch from the old to the new one in one step.

    Raises KubectlError when the record could not be stored. Returns a note when only the deletion of older
    chunks failed: the new record is in place, and the next write deletes them.
    """
    deadline = time.monotonic() + RETRY_S
    generation = uuid.uuid4().hex[:10]
    *chunks, index = cluster_objects(plan, record, generation)
    if chunks:
        retry_transient(partial(_create_chunks, kubectl, plan.namespace, chunks), deadline)
    retry_transient(partial(_replace_or_create, kubectl, plan.namespace, index), deadline)
    if not chunks:
        return None
    try:
        retry_transient(partial(_delete_older_chunks, kubectl, plan, generation), deadline)
    except KubectlError as error:
        return f"older chunks of configmap/{record_name(plan)} were not deleted ({error}); the next write retries"
    return None


def _delete_older_chunks(kubectl: Kubectl, plan: Plan, generation: str) -> None:
    older = f"{CHUNK_OF}={record_name(plan)},{GENERATION}!={generation}"
    checked(run(kubectl, plan.namespace, ["delete", "configmap", "-l", older, "--ignore-not-found", "--wait=false"]))


def _get(kubectl: Kubectl, namespace: str, args: list[str]) -> dict[str, Any] | None:
    result = checked(run(kubectl, namespace, ["get", *args, "-o", "json", "--ignore-not-found"]))
    if not result.stdout.strip():
        return None
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise KubectlError(f"kubectl get {' '.join(args)} did not print JSON", transient=True) from None
    return document if isinstance(document, dict) else None


def _decoded(where: str, blob_base64: str) -> ApplyRecord:
    try:
        return from_json(gzip.decompress(base64.b64decode(blob_base64, validate=True)).decode())
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as error:
        raise RecordUnreadable(where, f"{type(error).__name__}: {error}") from None


def _from_index(kubectl: Kubectl, plan: Plan, index: dict[str, Any]) -> ApplyRecord | None:
    """The record an index points to; None when its chunks do not match it (a write replaced them meanwhile)."""
    where = f"configmap/{record_name(plan)} in namespace {plan.namespace}"
    data = index.get("data") or {}
    if LEGACY_KEY in data:
        try:
            return from_json(data[LEGACY_KEY])
        except ValueError as error:
            raise RecordUnreadable(where, str(error)) from None
    if data.get("format") != FORMAT:
        raise RecordUnreadable(where, "neither a version-1 nor a version-2 record")
    if data.get("chunks") == "0":
        return _decoded(where, (index.get("binaryData") or {}).get(GZIP_KEY, ""))
    generation, count = data.get("generation", ""), int(data.get("chunks", "0") or 0)
    listed = _get(kubectl, plan.namespace, ["configmap", "-l", f"{CHUNK_OF}={record_name(plan)},{GENERATION}="
                                                               f"{generation}"])
    chunks = sorted((listed or {}).get("items", []),
                    key=lambda item: int(item["metadata"].get("annotations", {}).get("infra-orchestrator/chunk", -1)))
    numbers = [int(item["metadata"].get("annotations", {}).get("infra-orchestrator/chunk", -1)) for item in chunks]
    if numbers != list(range(count)):
        return None
    try:
        blob = b"".join(base64.b64decode(item["binaryData"][GZIP_KEY], validate=True) for item in chunks)
    except (KeyError, ValueError) as error:
        raise RecordUnreadable(where, f"a chunk of generation {generation} is corrupt: {error}") from None
    if hashlib.sha256(blob).hexdigest() != data.get("sha256"):
        raise RecordUnreadable(where, f"the chunks of generation {generation} do not match the index's digest")
    return _decoded(where, base64.b64encode(blob).decode())


def read_cluster(kubectl: Kubectl, plan: Plan, retry_s: float = RETRY_S) -> ApplyRecord | None:
    """The record stored in the cluster, or None when there is none.

    Raises RecordUnreadable when one exists but cannot be read, KubectlError when the cluster cannot be reached
    (after retrying transient failures for `retry_s`).
    """
    deadline = time.monotonic() + retry_s
    read_index = partial(_get, kubectl, plan.namespace, ["configmap", record_name(plan)])
    index = retry_transient(read_index, deadline)
    for _ in range(_CONSISTENT_READS):
        if index is None:
            return None
        record = retry_transient(partial(_from_index, kubectl, plan, index), deadline)
        if record is not None:
            return record
        again = retry_transient(read_index, deadline)
        if again is not None and again["metadata"].get("resourceVersion") == index["metadata"].get("resourceVersion"):
            break  # the index did not move, yet its chunks are incomplete: a partial record
        index = again
    raise RecordUnreadable(f"configmap/{record_name(plan)} in namespace {plan.namespace}",
                           "its chunks are missing or incomplete")


def save(kubectl: Kubectl | None, plan: Plan, record: ApplyRecord) -> str | None:
    """Store in the cluster first (when one is given: raises KubectlError if that fails), then mirror locally.

    Returns a note when the mirror (or the cleanup of older chunks) could not be written; never raises for it.
    """
    notes = [write_cluster(kubectl, plan, record)] if kubectl is not None else []
    try:
        write_atomically(mirror_path(plan), mask(record.to_json()))
    except OSError as error:
        where = "the cluster record is current" if kubectl is not None else "no copy of the record was kept"
        notes.append(f"could not write the local record mirror {mirror_path(plan)} ({error}); {where}")
    return "; ".join(note for note in notes if note) or None


def load(kubectl: Kubectl, plan: Plan, retry_s: float = RETRY_S) -> tuple[ApplyRecord | None, str]:
    """The cluster's record, else the local mirror; with where it came from, for a `note:` line.

    (None, ...) means no record anywhere. A record that exists but cannot be read raises RecordUnreadable
    (naming the copy), so that a rollback refuses instead of guessing.
    """
    stored = read_cluster(kubectl, plan, retry_s)
    if stored is not None:
        return stored, f"record read from configmap/{record_name(plan)} in namespace {plan.namespace}"
    mirrored = read_mirror(plan)
    if mirrored is not None:
        return mirrored, f"record read from {mirror_path(plan)} (none in the cluster)"
    return None, "no apply record in the cluster or next to the plan"


def load_for_preview(kubectl: Kubectl, plan: Plan) -> tuple[ApplyRecord | None, str]:
    """Like `load`, but a preview needs no cluster access and never fails over a record: it falls back to the
    mirror at the first failure, and says so (an unreadable record is named, since executing would refuse)."""
    try:
        return load(kubectl, plan, retry_s=0)
    except RecordUnreadable as error:
        return None, f"{error}; executing would refuse"
    except KubectlError as error:
        try:
            mirrored = read_mirror(plan)
        except RecordUnreadable as unreadable:
            return None, f"{unreadable}; the cluster's record could not be read ({error})"
        where = f"record read from {mirror_path(plan)}" if mirrored else "no apply record next to the plan"
        return mirrored, f"{where}; the cluster's record could not be read ({error})"
