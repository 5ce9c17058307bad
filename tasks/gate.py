"""The label gate and the PR audit trail. GitHub settings are read inside each task, never passed as
parameters, so the token cannot end up in a run's recorded inputs."""

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.conventions import LABELS, status_context
from core.gate import GateDecision, GateRequirement, short
from core.vocabulary import CommitState
from integrations.github import (
    GitHubError,
    GitHubSettings,
    check_gate,
    claim_trigger_label,
    recheck_gate,
    restore_trigger_label,
    set_commit_status,
    status_descriptions,
)
from integrations.pull_request import failures, report_execution
from tasks.links import flow_run_url, settings_for

CLAIMED_BY = "claimed by run "
"""How the `infra/<flow>` status of a run that claimed the label begins: the run that finds the label gone reads
the claimer's id there."""


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
def claim_label(requirement: GateRequirement, sha: str) -> str | None:
    """One label, one run: right after the recheck, before the first change, the run claims the trigger label by
    removing it and says so in `infra/<flow>` on `sha`. Returns None when this run claimed it, else the refusal
    reason: the label was already gone (another run claimed it: `already claimed by run <id>`), or GitHub could
    not be asked (nothing is changed unclaimed)."""
    label = LABELS[requirement.flow]
    run = flow_run.get_id() or "unknown"
    try:
        settings = settings_for(requirement)
        if not claim_trigger_label(settings, requirement):
            holders = [text.removeprefix(CLAIMED_BY).split(" ", 1)[0]
                       for text in status_descriptions(settings, requirement.repository, sha,
                                                       status_context(requirement.flow))
                       if text.startswith(CLAIMED_BY)]
            holder = next((other for other in holders if other != run), None)
            return f"label '{label}' already claimed by {f'run {holder}' if holder else 'another run'}"
    except GitHubError as error:
        return f"could not claim label '{label}' on PR #{requirement.pr}: {error}"
    warning = report_status.fn(requirement, sha, CommitState.PENDING, f"{CLAIMED_BY}{run} (label '{label}')")
    if warning:
        get_run_logger().warning("%s", warning)
    get_run_logger().info("claimed label '%s' on PR #%s at %s", label, requirement.pr, short(sha))
    return None


@task(cache_policy=NO_CACHE)
def put_label_back(requirement: GateRequirement) -> str | None:
    """The run claimed the label and then changed nothing: the label goes back, so a person may retry. Returns a
    warning when GitHub could not be updated."""
    part = f"put label '{LABELS[requirement.flow]}' back on PR #{requirement.pr}"
    try:
        settings = settings_for(requirement)
    except GitHubError as error:
        return f"could not {part}: {error}"
    failure = failures({part: lambda: restore_trigger_label(settings, requirement)}).get(part)
    return f"could not {part}{failure}" if failure is not None else None


@task(cache_policy=NO_CACHE)
def report_to_pull_request(requirement: GateRequirement, markdown: str) -> list[str]:
    """Post this execution's comment on the PR (the run claimed the trigger label before its first change).

    Returns a warning per part GitHub refused or never answered, after a bounded retry
    (integrations.pull_request.report_execution): the cluster change already happened and is recorded, so a
    GitHub outage must not turn a finished run into a failed one.
    """
    run_url = flow_run_url()
    if run_url:
        markdown = f"{markdown}\n\n[Prefect flow run]({run_url})"
    try:
        warnings = report_execution(settings_for(requirement), requirement, markdown)
    except GitHubError as error:  # a repository this worker does not serve
        warnings = [f"could not update PR #{requirement.pr}: {error}"]
    for warning in warnings:
        get_run_logger().warning("%s", warning)
    return warnings


@task(cache_policy=NO_CACHE)
def report_status(requirement: GateRequirement, sha: str, state: CommitState, description: str) -> str | None:
    """`infra/<flow>` on the head the gate saw (pending, then success or failure), for branch protection, retried
    like the PR comment. Returns a warning line when GitHub could not be updated (the run's outcome stands)."""
    context = status_context(requirement.flow)
    try:
        settings = settings_for(requirement)
    except GitHubError as error:  # a repository this worker does not serve
        return f"could not set {context} on {sha[:7]}: {error}"
    part = f"set {context} on {sha[:7]}"
    failure = failures({part: lambda: set_commit_status(settings, requirement.repository, sha, context, state,
                                                       description, flow_run_url())}).get(part)
    if failure is None:
        return None
    get_run_logger().warning("could not %s%s", part, failure)
    return f"could not {part}{failure}"
