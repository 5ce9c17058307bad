"""infra-scale's tasks: each wraps one core or integration call and carries its retry policy.

Reading the live state retries transient kubectl failures; publishing the PR is not retried as a task: each of
its GitHub writes retries by itself, checking first whether an earlier attempt landed (integrations.github.written),
so no write is retried by two layers and none opens a second PR or commits a file twice. Nothing is cached:
every run must see the cluster and GitHub as they are now.
"""

import os
from dataclasses import dataclass
from datetime import date
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.conventions import PLAN_FILE, Flow
from core.desired import DesiredState, desired_from
from core.diff import LIVE_RESOURCES, Diff
from core.lifecycle.scale import PullRequestOutcome, WrittenPlan
from core.plan_writer import pr_body, preview_results
from core.report import RunReport, notes_in
from core.settings import Settings
from integrations.github import GitHubSettings
from integrations.kubectl import get_items, kubectl_for
from integrations.pull_request import (
    publish_pull_request,
    repository_paths,
    write_plan_locally,
)
from tasks.artifacts import record_results
from tasks.retry import RETRIES, RETRY_DELAYS_S, is_transient


@task(cache_policy=NO_CACHE)
def load_desired_state(desired: str | None, target: str | None, namespace: str | None,
                       workloads: list[str] | None) -> DesiredState:
    """A desired-state file or the seed's flags; bad input fails the run before the cluster is read."""
    return desired_from(desired, target, namespace, workloads)


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def read_live_state(state: DesiredState) -> list[dict[str, Any]]:
    """Workloads and HPAs of the namespace in one batched `kubectl get`."""
    return get_items(kubectl_for(Settings.from_env(os.environ), state.context), state.namespace, LIVE_RESOURCES)


@task(cache_policy=NO_CACHE)
def write_plan(state: DesiredState, changes: Diff, plans_dir: str, day: date) -> WrittenPlan:
    """plan.yaml and previous-*.yaml into `<plans_dir>/<target>/`, atomically, then loaded back to validate."""
    written = write_plan_locally(state, changes, plans_dir, day)
    get_run_logger().info("plan written to %s (%d actions)", written.plan.path, len(written.plan.actions))
    return written


@task(cache_policy=NO_CACHE)
def open_or_update_pr(state: DesiredState, written: WrittenPlan, plans_dir: str, base: str,
                      notes: tuple[str, ...], day: date) -> PullRequestOutcome:
    """Commit the plan files to the target's branch and open its PR, or update the open one."""
    paths = repository_paths(plans_dir, state.target, list(written.files))
    body = pr_body(written.plan, written.live, paths[PLAN_FILE], state.source, notes)
    files = {paths[name]: text for name, text in written.files.items()}
    outcome = publish_pull_request(GitHubSettings.from_env(), state.target, files, body, day, base)
    get_run_logger().info("%s pull request #%d (%s), committed: %s", "opened" if outcome.created else "updated",
                          outcome.number, outcome.url, ", ".join(outcome.committed) or "nothing new")
    return outcome


@task(cache_policy=NO_CACHE)
def record_scale_artifacts(state: DesiredState, written: WrittenPlan | None, report: RunReport) -> None:
    """Log the report's lines; a table (one row per planned step) and a markdown summary."""
    logger = get_run_logger()
    for line in [*report.lines, report.final]:
        logger.info(line)
    results = preview_results(written.plan, written.live) if written is not None else []
    record_results(Flow.SCALE, state.target, f"infra-scale: {state.target} ({state.namespace})", state.namespace,
                   results, False, notes_in(report.lines))


@dataclass(frozen=True)
class TaskLiveState:
    def read(self, state: DesiredState) -> list[dict[str, Any]]:
        return read_live_state(state)


@dataclass(frozen=True)
class TaskPlanFiles:
    def write(self, state: DesiredState, changes: Diff, plans_dir: str, day: date) -> WrittenPlan:
        return write_plan(state, changes, plans_dir, day)


@dataclass(frozen=True)
class TaskPullRequests:
    def publish(self, state: DesiredState, written: WrittenPlan, plans_dir: str, base: str, notes: tuple[str, ...],
                day: date) -> PullRequestOutcome:
        return open_or_update_pr(state, written, plans_dir, base, notes, day)


@dataclass(frozen=True)
class TaskScaleReporter:
    def report(self, state: DesiredState, written: WrittenPlan | None, report: RunReport) -> None:
        record_scale_artifacts(state, written, report)
