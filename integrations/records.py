"""Where apply records live: a ConfigMap in the plan's namespace (any worker can read it later, as Helm keeps
release records in the cluster), mirrored next to the plan file when run locally.

Both writes are atomic: the ConfigMap is replaced in one API call, the mirror written to a temporary file and
renamed over the old one, so a crash never leaves half a record.
"""

import json
from pathlib import Path

from core.plan import Plan
from core.record import ApplyRecord, from_json, record_name
from integrations.files import write_atomically
from integrations.kubectl import Kubectl, KubectlError, checked, run

RECORD_KEY = "record.json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "infra-orchestrator"}


def mirror_path(plan: Plan) -> Path:
    return plan.path.with_name(f"{plan.path.stem}.record.json")


def read_mirror(plan: Plan) -> ApplyRecord | None:
    path = mirror_path(plan)
    try:
        return from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        return None  # a foreign or older file is not ours to trust


def read_cluster(kubectl: Kubectl, plan: Plan) -> ApplyRecord | None:
    """The record stored in the cluster, or None when there is none. Raises KubectlError when unreachable."""
    result = run(kubectl, plan.namespace, ["get", "configmap", record_name(plan), "-o", "json", "--ignore-not-found"])
    checked(result)
    if not result.stdout.strip():
        return None
    try:
        return from_json(json.loads(result.stdout)["data"][RECORD_KEY])
    except (ValueError, TypeError, KeyError):
        raise KubectlError(f"configmap {record_name(plan)} does not hold a readable record", transient=False) from None


def write_cluster(kubectl: Kubectl, plan: Plan, record: ApplyRecord) -> None:
    """Create or replace the record's ConfigMap in one call each."""
    manifest = json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": record_name(plan), "namespace": plan.namespace,
                     "labels": {**MANAGED_BY, "infra-orchestrator/record": "apply"},
                     "annotations": {"infra-orchestrator/plan": record.plan}},
        "data": {RECORD_KEY: record.to_json()},
    })
    result = run(kubectl, plan.namespace, ["replace", "-f", "-"], stdin=manifest)
    if not result.ok and "NotFound" in result.stderr:
        result = run(kubectl, plan.namespace, ["create", "-f", "-"], stdin=manifest)
    checked(result)


def save(kubectl: Kubectl | None, plan: Plan, record: ApplyRecord) -> None:
    """Mirror locally, then (when a cluster is given) store in the cluster."""
    write_atomically(mirror_path(plan), record.to_json())
    if kubectl is not None:
        write_cluster(kubectl, plan, record)


def load(kubectl: Kubectl, plan: Plan) -> tuple[ApplyRecord | None, str]:
    """The cluster's record, else the local mirror; with where it came from, for a `note:` line."""
    stored = read_cluster(kubectl, plan)
    if stored is not None:
        return stored, f"record read from configmap/{record_name(plan)} in namespace {plan.namespace}"
    mirrored = read_mirror(plan)
    if mirrored is not None:
        return mirrored, f"record read from {mirror_path(plan)} (none in the cluster)"
    return None, "no apply record in the cluster or next to the plan"


def load_for_preview(kubectl: Kubectl, plan: Plan) -> tuple[ApplyRecord | None, str]:
    """Like `load`, but a cluster that cannot be read is not an error: a preview falls back to the mirror."""
    try:
        return load(kubectl, plan)
    except KubectlError as error:
        mirrored = read_mirror(plan)
        where = f"record read from {mirror_path(plan)}" if mirrored else "no apply record next to the plan"
        return mirrored, f"{where}; the cluster's record could not be read ({error})"
