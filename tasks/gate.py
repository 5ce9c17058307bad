"""The label gate, its adapter for the lifecycle (TaskGate), and the PR audit trail. GitHub settings are read
inside each task, never passed as parameters, so the token cannot end up in a run's recorded inputs."""

from dataclasses import replace

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.conventions import LABELS, status_context
from core.expiry import rolls_back_in
from core.gate import GateDecision, GateRequirement, context_problem, files_read_by, local_files_problem, short
from core.plan import Plan
from core.report import RunReport, failure_reason
from core.vocabulary import CommitState, Outcome, StepStatus
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
from integrations.kubeconfig import allowed_contexts
from integrations.pull_request import failures, report_execution, report_refusal
from tasks.links import flow_run_url, settings_for
from tasks.review import plan_problem

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
def refusal_to_pull_request(requirement: GateRequirement, head_sha: str | None, reason: str) -> list[str]:
    """A refused execution on its PR: a comment and a failing `infra/<flow>` status with the reason and the fix,
    once per PR, head and reason (integrations.pull_request.report_refusal). Returns warnings for what GitHub
    refused or never answered."""
    try:
        warnings = report_refusal(settings_for(requirement), requirement, head_sha, reason, flow_run_url())
    except GitHubError as error:  # a repository this worker does not serve: nothing is said there
        warnings = [f"could not report the refusal on PR #{requirement.pr}: {error}"]
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


def pass_gate(requirement: GateRequirement, plan: Plan) -> GateDecision:
    """The label gate, plus: the plan and every file it reads (manifests, hint files) are, byte for byte, the
    files the PR carries at the head the gate saw (a local edit or a stale checkout must not ride on someone
    else's approval). The bytes compared are those the plan was parsed from, kept in memory since: the disk is
    not read again, so a checkout that changes after the parse cannot pass other bytes off as the PR's."""
    read: dict[str, bytes | None] = {**files_read_by(plan, requirement.plan_path)}
    requirement = replace(requirement, read_paths=tuple(path for path in read if path != requirement.plan_path))
    decision = verify_label(requirement)
    if not decision.allowed:
        return decision
    problem = context_problem(plan.context, allowed_contexts()) or local_files_problem(decision, requirement, read)
    return decision if problem is None else replace(decision, allowed=False, reason=problem)


class TaskGate:
    """The lifecycle's gate (core.lifecycle.ports.Gate) in a flow: the label check (a task) with the plan-blob
    comparison, and its recheck (a task), after which the run claims the trigger label (removes it) before its
    first change. A passed gate marks its head `infra/<flow>: pending`; `settle` sets the outcome there, and puts
    a claimed label back when the run changed nothing. Its `decision` is the run's provenance (TaskReporter)."""

    def __init__(self, require_plan: bool = False) -> None:
        self.require_plan = require_plan
        self.pending: tuple[GateRequirement, str] | None = None
        self.claimed = False
        self.head_sha: str | None = None
        """The head the check saw, refused or not (a refusal is reported there)."""
        self.decision: GateDecision | None = None
        """The decision that let the run go on (its provenance: who labeled, when, at which head)."""

    def check(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        decision = pass_gate(requirement, plan)
        if decision.allowed and self.require_plan and decision.head_sha:
            problem = plan_problem(requirement, decision.head_sha)
            decision = decision if problem is None else replace(decision, allowed=False, reason=problem)
        self.head_sha = decision.head_sha
        self.decision = decision if decision.allowed else None
        if decision.allowed and decision.head_sha:
            self.pending = (requirement, decision.head_sha)
            report_status(requirement, decision.head_sha, CommitState.PENDING, f"infra-{requirement.flow} is running")
        return decision

    def recheck(self, requirement: GateRequirement, first: GateDecision) -> GateDecision:
        decision = recheck_label(requirement, first)
        if not decision.allowed or self.claimed or not first.head_sha:
            return decision
        taken = claim_label(requirement, first.head_sha)
        if taken is not None:
            return replace(decision, allowed=False, reason=taken)
        self.claimed = True
        return decision

    def settle(self, requirement: GateRequirement | None, report: RunReport) -> RunReport:
        """After an executing run: a refusal (by the gate, the recheck or the lock: nothing was done) is said on
        the PR, once per head and reason, with `infra/<flow>` failure; after a passed gate, a label the run
        claimed goes back when it changed nothing (no step ran), then `infra/<flow>` success or failure on the
        head it saw, with one line why."""
        if requirement is None:
            return report
        if report.final == Outcome.SKIPPED:
            reason = report.lines[-1].removeprefix("Refusing to execute: ").removesuffix(".") if report.lines else ""
            head = self.pending[1] if self.pending is not None else self.head_sha
            warnings = refusal_to_pull_request(requirement, head, reason)
            return replace(report, lines=(*report.lines[:-1], *(f"note: {w}" for w in warnings), *report.lines[-1:]))
        if self.pending is None:
            return report
        return self._finished(report, *self.pending)

    def _finished(self, report: RunReport, requirement: GateRequirement, sha: str) -> RunReport:
        results = (report.document or {}).get("results", [])
        changed = any(result.get("status") in (StepStatus.SUCCEEDED, StepStatus.FAILED) for result in results)
        if self.claimed and not changed:
            unlabeled = put_label_back(requirement)
            report = replace(report, lines=(*report.lines, f"note: {unlabeled}")) if unlabeled else report
        if report.final == Outcome.SUCCEEDED:
            timed = rolls_back_in(report.lines)
            state = CommitState.SUCCESS
            description = f"{len(results)} steps succeeded" + (f"; {timed}" if timed else "")
        else:
            state, description = CommitState.FAILURE, failure_reason(report)
        warning = report_status(requirement, sha, state, description)
        return replace(report, lines=(*report.lines, f"note: {warning}")) if warning else report
