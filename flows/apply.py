"""infra-apply: execute a plan once its PR carries `execute-plan`, recording each object's prior state."""

import os
from typing import Literal

from prefect.client.schemas.objects import State
from prefect.task_runners import ThreadPoolTaskRunner

from core.conventions import DEFAULT_PLAN, Flow
from core.lifecycle.apply import Apply
from core.policy import chosen_mode
from core.report import RunReport
from flows.decorator import flow
from flows.shared import TASK_WORKERS, execution, flow_result, run_name, settle_status, tag_run
from integrations.kubeconfig import allowed_contexts
from tasks.expiry import TaskExpiries, timed_plan
from tasks.gate import TaskGate
from tasks.plan import load_plan
from tasks.records import TaskRecords
from tasks.reporter import TaskReporter
from tasks.review import read_live_objects


@flow(name=Flow.APPLY.flow_name, flow_run_name=run_name(Flow.APPLY),
      task_runner=ThreadPoolTaskRunner(max_workers=TASK_WORKERS))
def infra_apply(plan: str = DEFAULT_PLAN, pr: int | None = None, execute: bool = False, atomic: bool = False,
                rollout_timeout_s: float = 120, lock_timeout_s: float = 300, repository: str | None = None,
                require_approval: bool = False, head_sha: str | None = None,
                require_plan: bool = False, policy: Literal["warn", "block"] | None = None) -> RunReport | State:
    """Preview by default; with `execute`, a PR number and a passing gate: capture, apply, verify, record.

    Steps on different workloads run side by side ($INFRA_MAX_PARALLEL_STEPS kubectl calls at a time, default 4,
    with the record's save beside them), and those that differ only in their object share one call; a transient
    kubectl failure is retried, a permanent one fails its step at once. With `atomic`, a failure rolls back the
    steps already applied.
    `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO; `require_approval` also
    asks for an approving review of the head SHA (Atlantis's apply requirement); `head_sha` is the head the
    labeled event carried (the gate refuses when the PR's head differs); `require_plan` refuses unless
    `infra/plan` succeeded on that head (Atlantis's `planned` apply requirement). `policy` ($INFRA_POLICY when
    not given, default "warn"): with "block", a policy finding (core.policy) refuses the apply before the gate's
    recheck; with "warn" the findings are warning lines.
    """
    tag_run(pr)
    gate = TaskGate(require_plan)
    executing = execution(Flow.APPLY, plan, pr, repository, require_approval, head_sha, lock_timeout_s,
                          gate) if execute else None
    records = TaskRecords()
    run = Apply(plan, load=timed_plan if execute else load_plan, records=records,
                reporter=TaskReporter(gate, records), atomic=atomic,
                rollout_timeout_s=rollout_timeout_s, policy=chosen_mode(policy, os.environ), execution=executing,
                contexts=allowed_contexts, live=None if execute else read_live_objects,
                expiries=TaskExpiries() if execute else None)
    return flow_result(Flow.APPLY, plan, settle_status(gate, executing, run.run()))
