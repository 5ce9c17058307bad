"""infra-plan: what a PR's plan would change, live value → planned value, validated by a server-side dry run,
posted as the PR's sticky plan comment with the `infra/plan` commit status. Read-only."""

import os
from typing import Literal

from prefect.client.schemas.objects import State

from core.conventions import DEFAULT_PLAN, Flow
from core.lifecycle.plan import PlanReview
from core.policy import chosen_mode
from core.report import RunReport
from flows.decorator import flow
from flows.shared import flow_result, run_name
from tasks.plan import load_plan
from tasks.review import TaskPlanCluster, TaskPlanReporter


@flow(name=Flow.PLAN.flow_name, flow_run_name=run_name(Flow.PLAN))
def infra_plan(plan: str = DEFAULT_PLAN, pr: int | None = None, repository: str | None = None,
               head_sha: str | None = None, policy: Literal["warn", "block"] | None = None) -> RunReport | State:
    """Read the plan's objects, compare live → planned per object and field, dry-run every step on the server,
    warn (an object that does not exist, an HPA that would fight the planned replicas, drift since the plan
    was written). With `pr`: one sticky comment on it (edited on every new commit) and `infra/plan` on its head.
    `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO; `head_sha` (the event's)
    is the commit the status goes on. The plan (and the files it reads) here must be the PR's, byte for byte.
    The policy checks (core.policy) are warnings, or with `policy` "block" ($INFRA_POLICY when not given)
    problems that fail the review's status."""
    review = PlanReview(plan, load=load_plan, cluster=TaskPlanCluster(),
                  reporter=TaskPlanReporter(pr, repository, head_sha), policy=chosen_mode(policy, os.environ))
    return flow_result(Flow.PLAN, plan, review.run())

