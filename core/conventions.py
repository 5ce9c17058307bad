"""The project's names, each defined once: flows, labels, default paths, record names, artifact keys and the
repository pattern. Tests, the CLI, the flows and the deployments read them from here."""

import hashlib
import os
import re
from enum import StrEnum
from pathlib import Path, PurePosixPath


class Flow(StrEnum):
    APPLY = "apply"
    ROLLBACK = "rollback"
    SCALE = "scale"
    PLAN = "plan"

    @property
    def flow_name(self) -> str:
        """The Prefect flow's name (and the command's): `infra-apply`, `infra-rollback`, `infra-scale`,
        `infra-plan`."""
        return f"infra-{self.value}"


LABELS: dict[str, str] = {Flow.APPLY: "execute-plan", Flow.ROLLBACK: "rollback-plan"}
"""The PR label that triggers each executing flow."""

DEFAULT_PLANS_DIR = "ops/plans/infra-scale"
PLAN_FILE = "plan.yaml"
DEFAULT_PLAN = f"{DEFAULT_PLANS_DIR}/prod/{PLAN_FILE}"
BRANCH_PREFIX = "infra-scale"
"""infra-scale's pull requests live on `infra-scale/<target>/<YYYY-MM-DD>`, titled `infra-scale: <target> (...)`."""
RECORD_NAME_PREFIX = "infra-record-"
"""Apply records are ConfigMaps named `infra-record-<hash of namespace and plan path>`."""

# Two annotation prefixes are on the wire, and both stay: stamps and records already in clusters are read by
# these names. The stamp goes on other people's objects (the workloads and HPAs a run changes), so it carries a
# DNS-qualified prefix as Kubernetes asks; the record's own ConfigMaps use the shorter one.
STAMP_PREFIX = "infra-orchestrator.io/"
RECORD_ANNOTATION = f"{STAMP_PREFIX}record"
"""Stamped by apply on every object it changes, naming the record (`record_name`): an object that carries it was
changed by us, so a rollback that finds no readable record for it must refuse rather than guess."""
STAMP_FIELD_MANAGER = "infra-orchestrator-stamp"
"""The stamp's field manager: the API server's managedFields, its audit log and a request log tell the stamp's
PATCH from a step's."""
RECORD_PREFIX = "infra-orchestrator/"
"""The labels and annotations of the record ConfigMaps."""
RECORD_LABEL = f"{RECORD_PREFIX}record"
"""`apply` on a record's index, `chunk` on its chunks."""
RECORD_PLAN = f"{RECORD_PREFIX}plan"
RECORD_CHUNK = f"{RECORD_PREFIX}chunk"
RECORD_CHUNK_OF = f"{RECORD_PREFIX}record-chunk-of"
RECORD_GENERATION = f"{RECORD_PREFIX}generation"
RECORD_BLOB_SHA = f"{RECORD_PREFIX}record-sha256"
"""On the index: the sha256 of the gzip it stores or names, so a write whose answer was lost knows its own."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "infra-orchestrator"}
POLICY_UNREAD_KIND = "infra-orchestrator/PolicyObjectsUnread"
"""The kind of the item a live read adds when it was not allowed to list some policy objects (no API serves it)."""
RECORD_KEY_FILE = "infra-orchestrator/record.key"
"""Where a user's generated record key is kept, under `$XDG_CONFIG_HOME` (default ~/.config)."""

MARKER_PREFIX = "<!-- infra-orchestrator:"
"""Hidden lines in the project's PR comments; a comment that starts with one is the project's."""
EARLIER_RUNS = f"{MARKER_PREFIX}earlier-runs -->"
"""Separates a sticky comment's newest run from the earlier ones (collapsed under it)."""
RUN_SEPARATOR = f"{MARKER_PREFIX}run -->"


def audit_marker(flow: str, plan_path: str) -> str:
    """The first line of a flow's comments on a plan."""
    return f"{MARKER_PREFIX}{flow}:{plan_path} -->"


def execution_marker(run: str) -> str:
    """A line naming one execution's comment, so that a post whose answer was lost is found, not repeated."""
    return f"<!-- infra-orchestrator-execution:{run} -->"


def target_marker(target: str) -> str:
    """A hidden line in an infra-scale PR's body naming its target (found even if the branch or title changed)."""
    return f"<!-- infra-scale:target={target} -->"


def status_context(flow: str) -> str:
    """The commit status each flow sets, which branch protection can require: `infra/plan`, `infra/apply`..."""
    return f"infra/{flow}"

REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
"""`owner/name`, matched in full (`fullmatch`). An owner is letters, digits and `-` (GitHub's, and GitHub
Enterprise Server's, which turns any other character of an external login into `-`); a name also takes `_` and
`.`, but is never dots only (`..` would walk the API's URL)."""


def artifact_key(flow: Flow, target: str) -> str:
    """A stable Prefect artifact key per flow and target, so the UI shows each target's history (keys allow
    only [a-z0-9-])."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{flow.flow_name}-{target}".lower()).strip("-")


def repository_path(path: str | Path) -> str:
    """A local path as the repository names it: POSIX, normalised, relative to the working directory (the
    clone's root), so that `x`, `./x` and `/clone/x` are one file (one plan, one record, one blob in the PR). A
    path outside the working directory stays absolute, and then names no file in the repository."""
    cwd = Path(os.path.normpath(Path.cwd()))
    local = Path(os.path.normpath(cwd / path))
    return PurePosixPath(*(local.relative_to(cwd) if local.is_relative_to(cwd) else local).parts).as_posix()


LOCK_LIMIT_PREFIX = "infra-lock-"
LEASE_NAME = "infra-orchestrator-lock"
"""The Kubernetes Lease in the plan's namespace that one run at a time holds while it changes the namespace."""


class Env(StrEnum):
    """The environment variables the project reads (core.settings parses the run's own settings)."""

    KUBECTL = "KUBECTL"
    """The kubectl binary (the seed's `KUBECTL=echo` trick)."""
    KUBECONFIG = "KUBECONFIG"
    KUBECTL_TIMEOUT = "INFRA_KUBECTL_TIMEOUT"
    MAX_PARALLEL_STEPS = "INFRA_MAX_PARALLEL_STEPS"
    CONTEXTS = "INFRA_CONTEXTS"
    POLICY = "INFRA_POLICY"
    REPOSITORIES = "INFRA_REPOSITORIES"
    TRUSTED_BOTS = "INFRA_TRUSTED_BOTS"
    BASE_BRANCHES = "INFRA_BASE_BRANCHES"
    RECORD_KEY = "INFRA_RECORD_KEY"
    RECORD_KEYS_OLD = "INFRA_RECORD_KEYS_OLD"
    RECORD_KEY_BLOCK = "INFRA_RECORD_KEY_BLOCK"
    LEASE_SECONDS = "INFRA_LEASE_SECONDS"
    MAX_EXPIRY = "INFRA_MAX_EXPIRY"
    FAST_START = "INFRA_FAST_START"
    """0: the event-woken worker starts no fork server (deployments.event_worker)."""
    FORK_SERVER = "INFRA_FORK_SERVER"
    """The fork server's socket, set by the worker for the runs it starts (deployments.fork_server)."""
    WEBHOOK_LOG_LEVEL = "INFRA_WEBHOOK_LOG_LEVEL"
    WEBHOOK_HOST = "INFRA_WEBHOOK_HOST"
    WEBHOOK_PORT = "INFRA_WEBHOOK_PORT"
    WEBHOOK_STATE = "INFRA_WEBHOOK_STATE"
    WEBHOOK_ROUTES = "INFRA_WEBHOOK_ROUTES"
    WEBHOOK_READ_TIMEOUT = "INFRA_WEBHOOK_READ_TIMEOUT"
    WEBHOOK_MAX_BODY_BYTES = "INFRA_WEBHOOK_MAX_BODY_BYTES"
    WEBHOOK_MAX_CONNECTIONS = "INFRA_WEBHOOK_MAX_CONNECTIONS"
    CHECKOUT = "INFRA_ORCHESTRATOR_DIR"
    """A worker's checkout of the project, where its deployments' runs start (deployments.worker)."""


def lock_limit_name(context: str, namespace: str) -> str:
    """The Prefect global concurrency limit of what a run changes: one cluster (its kubeconfig context) and one
    namespace, never a field the plan's author picks freely (`target`). `infra-lock-<context>.<namespace>`, the
    context in [a-z0-9-] with a digest of its exact name when that changed it (`arn:aws:eks:...:cluster/prod`)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", context.lower()).strip("-")[:100] or "context"
    if slug != context:
        slug += "-" + hashlib.sha256(context.encode()).hexdigest()[:8]
    return f"{LOCK_LIMIT_PREFIX}{slug}.{namespace}"
