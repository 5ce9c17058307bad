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

Every copy is signed (integrations.record_key): the stored JSON is the record with a `signature` field (key id and
HMAC-SHA256 over the record's canonical JSON). A copy is used only once it verifies, inflates within what its plan
could produce, and passes the content checks (core.record_check). Index writes are compare-and-swap on the
resourceVersion the run last saw: a conflict means someone else wrote the record, and the run stops.

Version-1 records (one ConfigMap with `data.record.json`, unsigned) are named and refused, never acted on.
"""

import base64
import gzip
import hashlib
import json
import time
import uuid
import zlib
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from core.conventions import MANAGED_BY, RECORD_CHUNK, RECORD_LABEL, RECORD_PLAN
from core.conventions import RECORD_BLOB_SHA as BLOB_SHA
from core.conventions import RECORD_CHUNK_OF as CHUNK_OF
from core.conventions import RECORD_GENERATION as GENERATION
from core.errors import LeaseLost
from core.plan import Plan
from core.record import (
    ANY_REVISION,
    MAX_CHAIN,
    ApplyRecord,
    RecordUnreadable,
    Saved,
    file_digest,
    from_data,
    record_name,
)
from core.record_check import RecordCorrupt, checked_actions
from integrations.files import write_atomically
from integrations.kubectl import Kubectl, KubectlError, checked, retry_transient, run
from integrations.record_key import RecordKeyError, RecordKeys, block_configured, record_keys
from integrations.secrets import mask

LEGACY_KEY = "record.json"
"""Version 1: the record as JSON text in `data`."""
GZIP_KEY = "record.json.gz"
FORMAT = "2"
MAX_OBJECT_BYTES = 1024 * 1024
"""The API server refuses larger objects (etcd's request limit)."""
CHUNK_BYTES = 700 * 1024
"""Gzip bytes per object: 933 KiB once base64-encoded, leaving room for metadata under MAX_OBJECT_BYTES."""
RETRY_S = 30.0
"""How long one record read or write retries transient failures."""
_CONSISTENT_READS = 5
"""Index reads before a record whose chunks never match its index is called unreadable."""
BASE_RECORD_BYTES = 256 * 1024
STEP_RECORD_BYTES = 64 * 1024
"""What one recorded step may take, with an HPA manifest as its prior state: a record larger than its plan's
actions times this (for each apply of a chain) is refused before it is inflated."""
SIGNATURE = "signature"
"""The stored record's field holding {key_id, hmac}: the HMAC-SHA256 over the record's canonical JSON (every other
field, sorted keys, no spaces)."""
UNVERIFIED = "its signature is checked when executing: the key is in a Prefect Secret block"
KEY_NEXT = "set INFRA_RECORD_KEY (or INFRA_RECORD_KEY_BLOCK) on every worker, as docs/production.md says"


class RecordConflict(LeaseLost):
    """Someone else wrote the record since this run last read or wrote it: the run no longer owns it."""


def max_record_bytes(plan: Plan) -> int:
    """The largest record (JSON) a chain of applies of a plan this size can produce."""
    return BASE_RECORD_BYTES + STEP_RECORD_BYTES * max(len(plan.actions), 1) * MAX_CHAIN


def _keys() -> RecordKeys:
    try:
        return record_keys()
    except RecordKeyError as error:
        raise RecordUnreadable("the record key", f"{error}; {KEY_NEXT}") from None


def _canonical(data: Any) -> str:
    return mask(json.dumps(data, sort_keys=True, separators=(",", ":")))


def signed(data: Any) -> dict[str, Any]:
    """A record's data (secrets masked) with its `signature` (key id and HMAC) beside its fields: the stored form,
    which a person reads as the record itself."""
    text = _canonical(data)
    key_id, mac = _keys().sign(text)
    return {**json.loads(text), SIGNATURE: {"key_id": key_id, "hmac": mac}}


def sealed(record: ApplyRecord, compact: bool = True) -> str:
    """The stored text of a record: its fields and its signature (secrets masked before signing)."""
    stored = signed(record.as_data())
    if compact:
        return json.dumps(stored, sort_keys=True, separators=(",", ":"))
    return json.dumps(stored, indent=1, sort_keys=True)


def unsealed(where: str, text: str, plan: Plan, verify: bool = True) -> ApplyRecord:
    """The record in a stored text, once its signature verifies and its content is checked.

    Raises RecordUnreadable for text that is not JSON at all (truncated), RecordCorrupt for anything else that
    is not a record apply wrote with a key this worker holds. `verify` False (a preview, when the key is in a
    Prefect Secret block) skips the signature only."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise RecordUnreadable(where, f"not JSON ({error})") from None
    if not isinstance(data, dict):
        raise RecordCorrupt(where, "not an apply record")
    signature = data.pop(SIGNATURE, None)
    if signature is None:
        if data.get("version") == 1:
            raise RecordCorrupt(where, "a version-1 record (written before records were bound and signed) is not "
                                "acted on", "roll back with the version of infra-orchestrator that applied it, or "
                                "with --seed-fallback")
        raise RecordCorrupt(where, "it carries no signature")
    key_id = signature.get("key_id") if isinstance(signature, dict) else None
    mac = signature.get("hmac") if isinstance(signature, dict) else None
    if not isinstance(key_id, str) or not isinstance(mac, str):
        raise RecordCorrupt(where, "its signature is malformed")
    verified = _keys().verifies(key_id, mac, _canonical(data)) if verify else True
    if verified is None:
        raise RecordCorrupt(where, f"it is signed with key {key_id[:16]!r}, which this worker does not hold",
                            f"nothing was changed; {KEY_NEXT} (keep the old key in INFRA_RECORD_KEYS_OLD after a "
                            "rotation)")
    if not verified:
        raise RecordCorrupt(where, "its signature does not verify: it was changed since infra-orchestrator wrote it")
    try:
        record = from_data(data)
    except ValueError as error:
        raise RecordCorrupt(where, str(error)) from None
    checked_actions(record, plan.namespace, where)
    return record


def mirror_path(plan: Plan) -> Path:
    return plan.path.with_name(f"{plan.path.stem}.record.json")


def read_mirror(plan: Plan, verify: bool = True) -> ApplyRecord | None:
    """The mirrored record; None when there is no file. Raises RecordUnreadable for a file that is not a
    whole record (truncated by a crash or a full disk), RecordCorrupt for one that does not verify (edited,
    forged)."""
    path = mirror_path(plan)
    if not path.exists():
        return None
    return read_file(plan, path, verify)


def read_file(plan: Plan, path: Path, verify: bool = True) -> ApplyRecord:
    """A saved copy of the record (--from-record), used only once it verifies like the stored one."""
    try:
        size = path.stat().st_size
        if size > max_record_bytes(plan) * 2:  # a mirror is indented
            raise RecordCorrupt(str(path), f"{size} bytes, more than this plan's record can hold")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RecordUnreadable(str(path), str(error)) from None
    return unsealed(str(path), text, plan, verify)


def _labels(kind: str) -> dict[str, str]:
    return {**MANAGED_BY, RECORD_LABEL: kind}


def cluster_objects(plan: Plan, record: ApplyRecord, generation: str) -> list[dict[str, Any]]:
    """The ConfigMaps that store `record`: its chunks (none when it fits inline), then the index, last."""
    name = record_name(plan)
    blob = gzip.compress(sealed(record).encode(), compresslevel=6, mtime=0)
    index: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": plan.namespace, "labels": _labels("apply"),
                     "annotations": {RECORD_PLAN: record.plan,
                                     BLOB_SHA: hashlib.sha256(blob).hexdigest()}},
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
                            "annotations": {RECORD_CHUNK: str(number)}},
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


def _conflict(kubectl: Kubectl, plan: Plan, why: str) -> RecordConflict:
    """The run stops: who wrote the record instead, as far as the record now stored says."""
    where = f"configmap/{record_name(plan)} in namespace {plan.namespace}"
    try:
        now = read_cluster(kubectl, plan, retry_s=0)
    except (RecordUnreadable, KubectlError) as error:
        who = f"a record this run cannot read ({error})"
    else:
        who = "nothing (it was deleted)" if now is None else (
            f"the record of PR #{now.pr} (run {now.run_id or 'unknown'}, status {now.status})")
    return RecordConflict(f"{where} {why}; it now holds {who}")


def _swap(kubectl: Kubectl, plan: Plan, manifest: dict[str, Any], revision: str | None) -> str | None:
    """Write the index as a compare-and-swap on `revision` (None: create, it must not exist; ANY_REVISION:
    replace what is there) and return its new resourceVersion. A retry after a lost answer finds its own write
    (the index names the same gzip digest) and takes it as done."""
    namespace = plan.namespace
    if revision not in (None, ANY_REVISION):
        manifest = {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": revision}}
    verb = "create" if revision is None else "replace"
    result = run(kubectl, namespace, [verb, "-f", "-", "-o", "json"], stdin=json.dumps(manifest))
    if revision == ANY_REVISION and not result.ok and "NotFound" in result.stderr:
        result = run(kubectl, namespace, ["create", "-f", "-", "-o", "json"], stdin=json.dumps(manifest))
    if not result.ok and any(reason in result.stderr for reason in ("AlreadyExists", "Conflict", "NotFound",
                                                                     "the object has been modified")):
        stored = _get(kubectl, namespace, ["configmap", record_name(plan)])
        ours = manifest["metadata"]["annotations"][BLOB_SHA]
        if stored is not None and (stored["metadata"].get("annotations") or {}).get(BLOB_SHA) == ours:
            return str(stored["metadata"].get("resourceVersion") or "") or None
        raise _conflict(kubectl, plan, "was written by someone else since this run last read it")
    checked(result)
    try:
        return str(json.loads(result.stdout)["metadata"]["resourceVersion"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def write_cluster(kubectl: Kubectl, plan: Plan, record: ApplyRecord) -> Saved:
    """Store the record so that readers switch from the old to the new one in one step, compare-and-swap on
    `record.revision`.

    Raises KubectlError when the record could not be stored, RecordConflict when someone else wrote it. The note
    says when only the deletion of older chunks failed: the new record is in place, and the next write deletes
    them.
    """
    deadline = time.monotonic() + RETRY_S
    generation = uuid.uuid4().hex[:10]
    *chunks, index = cluster_objects(plan, record, generation)
    if chunks:
        retry_transient(partial(_create_chunks, kubectl, plan.namespace, chunks), deadline)
    revision = retry_transient(partial(_swap, kubectl, plan, index, record.revision), deadline)
    if not chunks:
        return Saved(revision)
    try:
        retry_transient(partial(_delete_older_chunks, kubectl, plan, generation), deadline)
    except KubectlError as error:
        return Saved(revision, f"older chunks of configmap/{record_name(plan)} were not deleted ({error}); the next "
                               "write retries")
    return Saved(revision)


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


def _inflated(where: str, blob: bytes, limit: int) -> str:
    """The gzip `blob` inflated, never to more than `limit` bytes (a record larger than its plan could produce
    is refused before it is inflated further)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(blob, limit + 1)
    except zlib.error as error:
        raise RecordUnreadable(where, f"not a whole gzip stream ({error})") from None
    if len(text) > limit:
        raise RecordCorrupt(where, f"it inflates to more than {limit} bytes, more than this plan's record can hold")
    if not inflater.eof:
        raise RecordUnreadable(where, "not a whole gzip stream (truncated)")
    try:
        return text.decode()
    except UnicodeDecodeError as error:
        raise RecordUnreadable(where, f"not UTF-8 ({error})") from None


def _decoded(where: str, blob_base64: Any, plan: Plan, verify: bool) -> ApplyRecord:
    if not isinstance(blob_base64, str):
        raise RecordUnreadable(where, "its record data is missing")
    try:
        blob = base64.b64decode(blob_base64, validate=True)
    except ValueError as error:
        raise RecordUnreadable(where, f"not base64 ({error})") from None
    return unsealed(where, _inflated(where, blob, max_record_bytes(plan)), plan, verify)


def _from_index(kubectl: Kubectl, plan: Plan, index: dict[str, Any], verify: bool) -> ApplyRecord | None:
    """The record an index points to; None when its chunks do not match it (a write replaced them meanwhile)."""
    where = f"configmap/{record_name(plan)} in namespace {plan.namespace}"
    data = index.get("data") or {}
    if not isinstance(data, dict):
        raise RecordUnreadable(where, "its data is not a map")
    if LEGACY_KEY in data:
        return unsealed(where, str(data[LEGACY_KEY]), plan, verify)
    if data.get("format") != FORMAT:
        raise RecordUnreadable(where, "neither a version-1 nor a version-2 record")
    if data.get("chunks") == "0":
        return _decoded(where, (index.get("binaryData") or {}).get(GZIP_KEY), plan, verify)
    generation, count_text = str(data.get("generation", "")), str(data.get("chunks", ""))
    if not count_text.isdigit():
        raise RecordUnreadable(where, f"its chunk count {count_text!r} is not a number")
    count, limit = int(count_text), max_record_bytes(plan)
    if (count - 1) * CHUNK_BYTES > limit:
        raise RecordCorrupt(where, f"{count} chunks, more than this plan's record can hold")
    listed = _get(kubectl, plan.namespace, ["configmap", "-l", f"{CHUNK_OF}={record_name(plan)},{GENERATION}="
                                                               f"{generation}"])

    def number(item: dict[str, Any]) -> int:
        text = str((item.get("metadata", {}).get("annotations") or {}).get(RECORD_CHUNK, "-1"))
        return int(text) if text.isdigit() else -1

    chunks = sorted((listed or {}).get("items", []), key=number)
    if [number(item) for item in chunks] != list(range(count)):
        return None
    try:
        blob = b"".join(base64.b64decode(item["binaryData"][GZIP_KEY], validate=True) for item in chunks)
    except (KeyError, ValueError, TypeError) as error:
        raise RecordUnreadable(where, f"a chunk of generation {generation} is corrupt: {error}") from None
    if hashlib.sha256(blob).hexdigest() != data.get("sha256"):
        raise RecordUnreadable(where, f"the chunks of generation {generation} do not match the index's digest")
    return unsealed(where, _inflated(where, blob, limit), plan, verify)


def read_cluster(kubectl: Kubectl, plan: Plan, retry_s: float = RETRY_S, verify: bool = True) -> ApplyRecord | None:
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
        record = retry_transient(partial(_from_index, kubectl, plan, index, verify), deadline)
        if record is not None:
            return replace(record, revision=str(index["metadata"].get("resourceVersion") or "") or None)
        again = retry_transient(read_index, deadline)
        if again is not None and again["metadata"].get("resourceVersion") == index["metadata"].get("resourceVersion"):
            break  # the index did not move, yet its chunks are incomplete: a partial record
        index = again
    raise RecordUnreadable(f"configmap/{record_name(plan)} in namespace {plan.namespace}",
                           "its chunks are missing or incomplete")


def save(kubectl: Kubectl | None, plan: Plan, record: ApplyRecord) -> Saved:
    """Store in the cluster first (when one is given: raises KubectlError if that fails, RecordConflict when
    someone else wrote it since), then mirror locally, both signed.

    The note says when the mirror (or the cleanup of older chunks) could not be written; never raises for it.
    """
    saved = write_cluster(kubectl, plan, record) if kubectl is not None else Saved(None)
    notes = [saved.note]
    try:
        write_atomically(mirror_path(plan), sealed(record, compact=False))
    except OSError as error:
        where = "the cluster record is current" if kubectl is not None else "no copy of the record was kept"
        notes.append(f"could not write the local record mirror {mirror_path(plan)} ({error}); {where}")
    return Saved(saved.revision, "; ".join(note for note in notes if note) or None, stored_digest(record))


def stored_digest(record: ApplyRecord) -> str:
    """sha256 of the signed record as the cluster stores it: what a run's provenance and a scheduled rollback's
    parameters name."""
    return file_digest(sealed(record, compact=True).encode())


def load(kubectl: Kubectl, plan: Plan, retry_s: float = RETRY_S,
         verify: bool = True) -> tuple[ApplyRecord | None, str]:
    """The cluster's record, else the local mirror; with where it came from, for a `note:` line.

    (None, ...) means no record anywhere. A record that exists but cannot be read raises RecordUnreadable
    (naming the copy), so that a rollback refuses instead of guessing.
    """
    stored = read_cluster(kubectl, plan, retry_s, verify)
    if stored is not None:
        return stored, f"record read from configmap/{record_name(plan)} in namespace {plan.namespace}"
    mirrored = read_mirror(plan, verify)
    if mirrored is not None:
        return mirrored, f"record read from {mirror_path(plan)} (none in the cluster)"
    return None, "no apply record in the cluster or next to the plan"


def load_for_preview(kubectl: Kubectl, plan: Plan) -> tuple[ApplyRecord | None, str]:
    """Like `load`, but a preview needs no cluster access and never fails over a record: it falls back to the
    mirror at the first failure, and says so (an unreadable record is named, since executing would refuse). A
    preview never imports Prefect: with the key in a Prefect Secret block, the signature is checked only when
    executing, and the preview says so."""
    verify = not block_configured()
    unverified = "" if verify else f" ({UNVERIFIED})"
    try:
        record, where = load(kubectl, plan, retry_s=0, verify=verify)
        return record, f"{where}{unverified if record else ''}"
    except RecordUnreadable as error:
        return None, f"{error}; executing would refuse"
    except KubectlError as error:
        try:
            mirrored = read_mirror(plan, verify)
        except RecordUnreadable as unreadable:
            return None, f"{unreadable}; the cluster's record could not be read ({error})"
        where = f"record read from {mirror_path(plan)}" if mirrored else "no apply record next to the plan"
        return mirrored, f"{where}; the cluster's record could not be read ({error})"
