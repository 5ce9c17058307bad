"""infra-plan's interfaces in a flow: the read-only cluster calls as tasks, and the reporter that publishes the
review (log, artifacts, and with a PR its sticky comment and the `infra/plan` commit status). The artifacts go
through tasks.artifacts.publish, as every flow's do: when the Prefect API fails, the review goes on with a note."""

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.conventions import Flow, artifact_key, repository_path, status_context
from core.gate import GateDecision, GateRequirement, files_read_by, local_files_problem
from core.plan import Plan
from core.report import RunReport, StepResult, failure, plan_markdown, plan_report, table_rows
from core.state import Objects
from core.steps import Step
from core.vocabulary import CommitState
from integrations.github import (
    GitHubError,
    GitHubSettings,
    PullRequestView,
    pull_request_view,
    set_commit_status,
    upsert_audit_comment,
)
from integrations.plan_review import dry_run, live_objects
from integrations.pull_request import plan_status
from integrations.secrets import mask
from tasks.artifacts import publish
from tasks.kube import kubectl_for
from tasks.links import flow_run_url, settings_for


@task(cache_policy=NO_CACHE)
def read_live_objects(plan: Plan) -> Objects:
    """`kubectl get` of every workload and HPA the plan could touch (a read, retried when transient)."""
    return live_objects(kubectl_for(plan), plan)


@task(cache_policy=NO_CACHE)
def dry_run_steps(plan: Plan, steps: Sequence[Step]) -> list[StepResult]:
    """Every step with `--dry-run=server`: the API server validates and admits it, and stores nothing."""
    return dry_run(kubectl_for(plan), plan, steps)


@dataclass(frozen=True)
class TaskPlanCluster:
    def capture(self, plan: Plan) -> Objects:
        return read_live_objects(plan)

    def dry_run(self, plan: Plan, steps: Sequence[Step]) -> list[StepResult]:
        return dry_run_steps(plan, steps)


@task(cache_policy=NO_CACHE)
def view_pull_request(pr: int, repository: str | None, paths: tuple[str, ...]) -> PullRequestView:
    """The PR's head, web page, and the blobs there of the plan and the files it reads (reads, retried by the
    GitHub client; no task retries on top)."""
    return pull_request_view(GitHubSettings.from_env(), repository, pr, paths)


@task(cache_policy=NO_CACHE)
def post_plan(pr: int, repository: str | None, plan_path: str, markdown: str, ok: bool, description: str,
              sha: str) -> str:
    """The sticky plan comment (one per PR and plan, edited on every new commit) and `infra/plan` on `sha`.
    Returns the note saying what was posted. Raises GitHubError: a plan not shown on its PR did not do its job.
    Each write retries by itself (integrations.github.written), so the task does not."""
    settings = GitHubSettings.from_env()
    requirement = GateRequirement(flow=Flow.PLAN, pr=pr, plan_path=plan_path, repository=repository)
    comment = upsert_audit_comment(settings, requirement, markdown)
    state = CommitState.SUCCESS if ok else CommitState.FAILURE
    set_commit_status(settings, repository, sha, status_context(Flow.PLAN), state, description, flow_run_url())
    return f"plan comment {comment} on PR #{pr}, status {status_context(Flow.PLAN)} on {sha[:12]}"


@task(cache_policy=NO_CACHE)
def plan_problem(requirement: GateRequirement, head_sha: str) -> str | None:
    """--require-plan (as Atlantis's `apply_requirements: [planned]`): why the apply may not run unless
    `infra/plan` succeeded on the head the gate saw, or None. A status that cannot be read refuses too."""
    context = status_context(Flow.PLAN)
    try:
        state = plan_status(settings_for(requirement), requirement.repository, head_sha)
    except GitHubError as error:  # the client already retried what was transient
        return f"could not read {context} on head {head_sha[:7]} (--require-plan): {error}"
    if state == CommitState.SUCCESS:
        return None
    found = f"is {state}" if state else "was not set"
    return f"{context} {found} on head {head_sha[:7]} (--require-plan): run infra-plan on it, then add the label again"


def checkout_problem(plan: Plan, pr: int, view: PullRequestView) -> str | None:
    """Whether the plan (and every file it reads) here is, byte for byte, what the PR carries at its head."""
    plan_path = repository_path(plan.path)
    read: dict[str, bytes | None] = {**files_read_by(plan, plan_path)}
    others = tuple(path for path in read if path != plan_path)
    requirement = GateRequirement(flow=Flow.PLAN, pr=pr, plan_path=plan_path, read_paths=others)
    decision = GateDecision(True, "", view.head_sha, view.blobs.get(plan_path),
                            file_blob_shas={path: view.blobs.get(path) for path in others})
    return local_files_problem(decision, requirement, read)


def plan_description(results: Sequence[StepResult], warnings: Sequence[str]) -> str:
    """One line for the commit status: how many steps passed their dry run, how many warnings."""
    failed = sum(not result.ok for result in results)
    verdict = f"dry run failed for {failed} of {len(results)} steps" if failed else \
        f"{len(results)} step{'s' if len(results) != 1 else ''} valid (server dry run)"
    return verdict + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else "")


def blocked_description(blocking: Sequence[str]) -> str | None:
    """The commit status's line when policy findings block the apply (INFRA_POLICY=block)."""
    if not blocking:
        return None
    count = len(blocking)
    return f"{count} policy finding{'s block' if count != 1 else ' blocks'} the apply (INFRA_POLICY=block)"


@dataclass(frozen=True)
class TaskPlanReporter:
    pr: int | None = None
    repository: str | None = None
    head_sha: str | None = None
    """The head the triggering event carried: the status goes on it (a newer commit gets its own run)."""

    def _view(self, plan: Plan) -> PullRequestView | None:
        if self.pr is None:
            return None
        plan_path = repository_path(plan.path)
        return view_pull_request(self.pr, self.repository, tuple(files_read_by(plan, plan_path)))

    def report(self, plan: Plan, results: Sequence[StepResult], warnings: Sequence[str],
               blocking: Sequence[str] = ()) -> RunReport:
        """`blocking`: the policy findings that fail the review (INFRA_POLICY=block)."""
        logger = get_run_logger()
        view = self._view(plan)
        problem = checkout_problem(plan, self.pr, view) if view is not None and self.pr is not None else None
        problems = [*([problem] if problem is not None else []), *blocking]
        run_url = flow_run_url()
        links = [*([(f"PR #{self.pr}", view.url)] if view is not None else []),
                 *([("Prefect flow run", run_url)] if run_url else [])]
        title = f"{Flow.PLAN.flow_name}: {plan.repository_path}"
        text = mask(plan_markdown(title, results, plan.namespace, [*problems, *warnings], links))
        key = artifact_key(Flow.PLAN, plan.target or plan.namespace)
        rows = [{column: mask(value) if isinstance(value, str) else value for column, value in row.items()}
                for row in table_rows(results, plan.namespace)]
        note = publish(key, lambda: create_table_artifact(table=rows, key=key, description=title),
                       lambda: create_markdown_artifact(markdown=text, key=f"{key}-summary", description=title))
        lines = [f"note: {note}"] if note else []
        if self.pr is not None and view is not None:
            ok = all(result.ok for result in results) and not problems
            note = post_plan(self.pr, self.repository, repository_path(plan.path), text, ok,
                             problem or blocked_description(blocking) or plan_description(results, warnings),
                             self.head_sha or view.head_sha)
            lines.append(f"note: {note}")
        report = plan_report(results, plan.namespace, warnings, lines, problems)
        for line in report.lines:
            logger.info(line)
        logger.info("%s", report.final)
        return report

    def fail(self, plan: Plan, reason: str) -> RunReport:
        get_run_logger().error("%s", reason)
        title = f"{Flow.PLAN.flow_name}: {plan.repository_path}"
        text = mask(f"### {title}\n\n**failed**: {reason}.")
        key = f"{artifact_key(Flow.PLAN, plan.target or plan.namespace)}-summary"
        note = publish(key, lambda: create_markdown_artifact(markdown=text, key=key, description=title))
        view = self._view(plan)
        if self.pr is not None and view is not None:
            post_plan(self.pr, self.repository, repository_path(plan.path), text, False, reason,
                      self.head_sha or view.head_sha)
        return failure(reason, [f"note: {note}"] if note else [])
