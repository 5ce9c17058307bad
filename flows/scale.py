"""The `infra-scale` flow: desired sizes in, a reviewed pull request out. Runs nightly; safe to run any time.

Replaces the old nightly orchestrator. Nothing changes in the cluster: the flow only reads it. Nothing to change
means no plan and no PR; a changed plan updates the target's open PR rather than opening another.
"""

from dataclasses import asdict
from datetime import UTC, datetime

from prefect import flow

from core.conventions import DEFAULT_PLANS_DIR, PLAN_FILE
from core.plan_writer import scale_report
from core.report import RunReport
from tasks.scale import (
    diff_state,
    load_desired_state,
    open_or_update_pr,
    read_live_state,
    record_scale_artifacts,
    write_plan,
)


@flow(name="infra-scale")
def infra_scale(desired: str | None = None, target: str | None = None, namespace: str | None = None,
                workloads: list[str] | None = None, execute: bool = False, base: str = "main",
                plans_dir: str = DEFAULT_PLANS_DIR) -> RunReport:
    """Load desired state → read live state → diff → write plan → open or update the PR → artifacts.

    `desired` is a desired-state file (e.g. `ops/desired/staging.yaml`); without it, `target`, `namespace` and
    `workloads` (`Deployment:web:2`, the seed's form) describe it. `execute=False` writes the plan locally and
    previews it; `execute=True` also commits it to the PR (GH_OWNER, GH_REPO, GITHUB_TOKEN or
    GITHUB_TOKEN_BLOCK, GITHUB_API_URL for GHE). Bad input raises InputError and fails the run.
    """
    day = datetime.now(UTC).date()
    state = load_desired_state(desired, target, namespace, workloads)
    live = read_live_state(state)
    changes = diff_state(state, live)
    if changes.empty:
        report = scale_report(state, changes, None, None, execute)
        record_scale_artifacts(state, None, report)
        return report
    written = write_plan(state, changes, plans_dir, day)
    plan_path = f"{plans_dir}/{state.target}/{PLAN_FILE}"
    pull_request = open_or_update_pr(state, written, plans_dir, base, changes.notes, day) if execute else None
    report = scale_report(state, changes, written.plan, plan_path, execute,
                          asdict(pull_request) if pull_request is not None else None)
    record_scale_artifacts(state, written, report)
    return report
