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
RECORD_NAME_PREFIX = "infra-record-"
"""Apply records are ConfigMaps named `infra-record-<hash of namespace and plan path>`."""

REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
"""`owner/name`, matched in full (`fullmatch`): letters, digits, `-`, `_` and `.` (GitHub Enterprise allows `_`
and `.` in owners), never a name of dots only (`..` would walk the API's URL)."""


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
