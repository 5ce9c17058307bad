"""The label gate and the PR audit trail. GitHub settings are read inside each task, never passed as
parameters, so the token cannot end up in a run's recorded inputs."""

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.gate import GateDecision, GateRequirement
from integrations.github import GitHubError, GitHubSettings, check_gate, recheck_gate, set_commit_status, status_context
from integrations.pull_request import report_execution, retried
from tasks.links import flow_run_url, settings_for


@task(cache_policy=NO_CACHE)
def verify_label(requirement: GateRequirement) -> GateDecision:
    """Who labeled the PR, is it open, not a draft and not a fork, did its head move after the label, which
    head and blobs (plan, manifests, hint files) were seen (pinned for later). An unserved repository is
    refused before anything is asked of GitHub."""
    decision = check_gate(GitHubSettings.from_env(), requirement)
    get_run_logger().info(decision.message)
    return decision


@task(cache_policy=NO_CACHE)
def recheck_label(requirement: GateRequirement, first: GateDecision) -> GateDecision:
    """Time of check vs time of use: the same head SHA, the same blobs as pinned, the label still there."""
    decision = recheck_gate(GitHubSettings.from_env(), requirement, first)
    get_run_logger().info(decision.message)
    return decision


@task(cache_policy=NO_CACHE)
def report_to_pull_request(requirement: GateRequirement, markdown: str, remove_label: bool = True) -> list[str]:
    """One label, one run: remove the trigger label (unless the run could not reach the cluster, so that a person
    can retry it); then create or update the single audit comment.

    Returns a warning per part GitHub refused or never answered, after a bounded retry
    (integrations.pull_request.report_execution): the cluster change already happened and is recorded, so a
    GitHub outage must not turn a finished run into a failed one.
    """
    run_url = flow_run_url()
    if run_url:
        markdown = f"{markdown}\n\n[Prefect flow run]({run_url})"
    try:
        warnings = report_execution(settings_for(requirement), requirement, markdown, remove_label)
    except GitHubError as error:  # a repository this worker does not serve
        warnings = [f"could not update PR #{requirement.pr}: {error}"]
    for warning in warnings:
        get_run_logger().warning("%s", warning)
    return warnings


@task(cache_policy=NO_CACHE)
def report_status(requirement: GateRequirement, sha: str, state: str, description: str) -> str | None:
    """`infra/<flow>` on the head the gate saw (pending, then success or failure), for branch protection, retried
    like the PR comment. Returns a warning line when GitHub could not be updated (the run's outcome stands)."""
    context = status_context(requirement.flow)
    try:
        settings = settings_for(requirement)
    except GitHubError as error:  # a repository this worker does not serve
        return f"could not set {context} on {sha[:7]}: {error}"
    part = f"set {context} on {sha[:7]}"
    failure = retried({part: lambda: set_commit_status(settings, requirement.repository, sha, context, state,
                                                       description, flow_run_url())}).get(part)
    if failure is None:
        return None
    get_run_logger().warning("could not %s%s", part, failure)
    return f"could not {part}{failure}"
