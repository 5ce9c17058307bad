"""infra-plan's interfaces in a flow: the read-only cluster calls as tasks, and the reporter that publishes the
review (log, artifacts, and with a PR its sticky comment and the `infra/plan` commit status)."""

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.conventions import Flow, artifact_key, repository_path
from core.gate import GateRequirement
from core.plan import Plan
from core.report import RunReport, StepResult, failure, plan_markdown, plan_report, table_rows
from core.state import Objects
from core.steps import Step
from integrations.github import (
    GitHubError,
    GitHubSettings,
    pull_request_head,
    set_commit_status,
    status_context,
    upsert_audit_comment,
)
from integrations.plan_review import dry_run, live_objects
from integrations.secrets import mask
from tasks.kube import kubectl_for
from tasks.links import flow_run_url


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


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 3])
def post_plan(pr: int, repository: str | None, plan_path: str, markdown: str, ok: bool, description: str) -> str:
    """The sticky plan comment (one per PR and plan, edited on every new commit) and `infra/plan` on the head.
    Returns the note line saying what was posted. Raises GitHubError (the run then fails: a plan that could not
    be shown on its PR did not do its job)."""
    settings = GitHubSettings.from_env()
    head, _ = pull_request_head(settings, repository, pr)
    requirement = GateRequirement(flow=Flow.PLAN, pr=pr, plan_path=plan_path, repository=repository)
    comment = upsert_audit_comment(settings, requirement, markdown)
    set_commit_status(settings, repository, head, status_context(Flow.PLAN), "success" if ok else "failure",
                      description, flow_run_url())
    return f"plan comment {comment} on PR #{pr}, status {status_context(Flow.PLAN)} on {head[:12]}"


def _pull_request_link(pr: int, repository: str | None) -> list[tuple[str, str]]:
    try:
        _, url = pull_request_head(GitHubSettings.from_env(), repository, pr)
    except GitHubError:
        return []
    return [(f"PR #{pr}", url)]


def plan_description(results: Sequence[StepResult], warnings: Sequence[str]) -> str:
    """One line for the commit status: how many steps passed their dry run, how many warnings."""
    failed = sum(not result.ok for result in results)
    verdict = f"dry run failed for {failed} of {len(results)} steps" if failed else \
        f"{len(results)} step{'s' if len(results) != 1 else ''} valid (server dry run)"
    return verdict + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else "")


@dataclass(frozen=True)
class TaskPlanReporter:
    pr: int | None = None
    repository: str | None = None

    def report(self, plan: Plan, results: Sequence[StepResult], warnings: Sequence[str]) -> RunReport:
        logger = get_run_logger()
        run_url = flow_run_url()
        links = [*(_pull_request_link(self.pr, self.repository) if self.pr is not None else []),
                 *([("Prefect flow run", run_url)] if run_url else [])]
        title = f"{Flow.PLAN.flow_name}: {plan.repository_path}"
        text = mask(plan_markdown(title, results, plan.namespace, warnings, links))
        key = artifact_key(Flow.PLAN, plan.target or plan.namespace)
        rows = [{column: mask(value) if isinstance(value, str) else value for column, value in row.items()}
                for row in table_rows(results, plan.namespace)]
        create_table_artifact(table=rows, key=key, description=title)
        create_markdown_artifact(markdown=text, key=f"{key}-summary", description=title)
        lines = []
        if self.pr is not None:
            note = post_plan(self.pr, self.repository, repository_path(plan.path), text,
                             all(result.ok for result in results), plan_description(results, warnings))
            lines.append(f"note: {note}")
        report = plan_report(results, plan.namespace, warnings, lines)
        for line in report.lines:
            logger.info(line)
        logger.info("%s", report.final)
        return report

    def fail(self, plan: Plan, reason: str) -> RunReport:
        get_run_logger().error("%s", reason)
        title = f"{Flow.PLAN.flow_name}: {plan.repository_path}"
        text = mask(f"### {title}\n\n**failed**: {reason}.")
        create_markdown_artifact(markdown=text, key=f"{artifact_key(Flow.PLAN, plan.target or plan.namespace)}"
                                                    "-summary", description=title)
        if self.pr is not None:
            post_plan(self.pr, self.repository, repository_path(plan.path), text, False, reason)
        return failure(reason)
