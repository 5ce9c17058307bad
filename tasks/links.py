"""Links a run leaves behind: the Prefect UI page of the running flow, and the pull request it ran for."""

from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL

from core.gate import GateRequirement
from integrations.github import DEFAULT_API_URL, GitHubError, GitHubSettings


def flow_run_url() -> str | None:
    """PREFECT_UI_URL + /runs/flow-run/<id>, when a UI is known (set, or derived from PREFECT_API_URL) and this
    runs inside a flow."""
    ui, run_id = PREFECT_UI_URL.value(), flow_run.id
    return f"{str(ui).rstrip('/')}/runs/flow-run/{run_id}" if ui and run_id else None


def pull_request_url(requirement: GateRequirement) -> str | None:
    """The PR's page: github.com for api.github.com, the host itself for GitHub Enterprise (`<host>/api/v3`);
    None for a repository this worker does not serve."""
    try:
        settings = GitHubSettings.from_env().serving(requirement.repository)
    except GitHubError:
        return None
    api = settings.api_url.rstrip("/")
    web = "https://github.com" if api == DEFAULT_API_URL.rstrip("/") else api.removesuffix("/api/v3")
    return f"{web}/{settings.owner}/{settings.repo}/pull/{requirement.pr}"
