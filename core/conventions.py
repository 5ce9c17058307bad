"""The project's names, each defined once: flows, labels, default paths, record names, artifact keys and the
repository pattern. Tests, the CLI, the flows and the deployments read them from here."""

import re
from enum import StrEnum
from pathlib import Path, PurePosixPath


class Flow(StrEnum):
    APPLY = "apply"
    ROLLBACK = "rollback"
    SCALE = "scale"

    @property
    def flow_name(self) -> str:
        """The Prefect flow's name (and the command's): `infra-apply`, `infra-rollback`, `infra-scale`."""
        return f"infra-{self.value}"


LABELS: dict[Flow, str] = {Flow.APPLY: "execute-plan", Flow.ROLLBACK: "rollback-plan"}
"""The PR label that triggers each executing flow."""

DEFAULT_PLANS_DIR = "ops/plans/infra-scale"
PLAN_FILE = "plan.yaml"
DEFAULT_PLAN = f"{DEFAULT_PLANS_DIR}/prod/{PLAN_FILE}"
RECORD_NAME_PREFIX = "infra-record-"
"""Apply records are ConfigMaps named `infra-record-<hash of namespace and plan path>`."""

REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
"""`owner/name` as GitHub allows them: owners are letters, digits and hyphens; names may add `.` and `_`."""


def artifact_key(flow: Flow, target: str) -> str:
    """A stable Prefect artifact key per flow and target, so the UI shows each target's history (keys allow
    only [a-z0-9-])."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{flow.flow_name}-{target}".lower()).strip("-")


def repository_path(path: str | Path) -> str:
    """A local path as the repository names it (POSIX, relative to the working directory, the clone's root); a
    path outside the working directory stays as given, and then names no file in the repository."""
    local = Path(path)
    if local.is_absolute() and local.resolve().is_relative_to(Path.cwd().resolve()):
        local = local.resolve().relative_to(Path.cwd().resolve())
    return PurePosixPath(*local.parts).as_posix().removeprefix("./")
