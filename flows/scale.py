"""The `infra-scale` flow: desired sizes in, a reviewed pull request out. Runs nightly; safe to run any time.

Replaces the old nightly orchestrator. Nothing changes in the cluster: the flow only reads it. Nothing to change
means no plan and no PR; a changed plan updates the target's open PR rather than opening another.
"""

from pathlib import Path

from prefect.runtime import flow_run

from core.conventions import DEFAULT_PLANS_DIR, Flow
from core.lifecycle.scale import Scale
from core.report import RunReport
from flows.decorator import flow
from tasks.scale import (
    TaskLiveState,
    TaskPlanFiles,
    TaskPullRequests,
    TaskScaleReporter,
    load_desired_state,
)


def scale_run_name() -> str:
    """"scale prod" (or "scale prod preview" without `execute`): the target, else the desired-state file's name."""
    parameters = flow_run.parameters
    target = parameters.get("target") or Path(str(parameters.get("desired") or "")).stem or "?"
    return f"{Flow.SCALE.value} {target}" + ("" if parameters.get("execute") else " preview")


@flow(name=Flow.SCALE.flow_name, flow_run_name=scale_run_name)
def infra_scale(desired: str | None = None, target: str | None = None, namespace: str | None = None,
                workloads: list[str] | None = None, execute: bool = False, base: str = "main",
                plans_dir: str = DEFAULT_PLANS_DIR) -> RunReport:
    """Load desired state → read live state → diff → write plan → open or update the PR → artifacts.

    `desired` is a desired-state file (e.g. `ops/desired/staging.yaml`); without it, `target`, `namespace` and
    `workloads` (`Deployment:web:2`, the seed's form) describe it. `execute=False` writes the plan locally and
    previews it; `execute=True` also commits it to the PR (GH_OWNER, GH_REPO, GITHUB_TOKEN or
    GITHUB_TOKEN_BLOCK, GITHUB_API_URL for GHE). Bad input raises InputError and fails the run.
    """
    return Scale(desired, target, namespace, workloads or [], plans_dir, base, load=load_desired_state,
                 live=TaskLiveState(), plans=TaskPlanFiles(), reporter=TaskScaleReporter(),
                 pull_requests=TaskPullRequests() if execute else None).run()
