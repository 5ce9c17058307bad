"""Where a run points: the Prefect UI page of the running flow, the pull request it ran for and its GitHub settings."""

from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL

from core.gate import GateRequirement
from integrations.github import GitHubError, GitHubSettings


def flow_run_url() -> str | None:
    """PREFECT_UI_URL + /runs/flow-run/<id>, when a UI is known (set, or derived from PREFECT_API_URL) and this
    runs inside a flow."""
    return run_page(flow_run.id) if flow_run.id else None


def run_page(run_id: str) -> str | None:
    """PREFECT_UI_URL + /runs/flow-run/<id>: any flow run's page (a scheduled one too), when a UI is known."""
    ui = PREFECT_UI_URL.value()
    return f"{str(ui).rstrip('/')}/runs/flow-run/{run_id}" if ui else None


def settings_for(requirement: GateRequirement) -> GitHubSettings:
    """The environment's settings, for the repository the run was triggered from when one is given and this
    worker serves it (GH_OWNER/GH_REPO or INFRA_REPOSITORIES). Raises GitHubError when it does not."""
    return GitHubSettings.from_env().serving(requirement.repository)


def pull_request_url(requirement: GateRequirement) -> str | None:
    """The PR's page; None for a repository this worker does not serve."""
    try:
        return settings_for(requirement).pull_request_page(requirement.pr)
    except GitHubError:
        return None
