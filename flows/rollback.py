"""infra-rollback: reverse what infra-apply did, once the PR carries `rollback-plan`."""

from prefect.client.schemas.objects import State
from prefect.task_runners import ThreadPoolTaskRunner

from core.conventions import DEFAULT_PLAN, Flow
from core.lifecycle.rollback import Rollback
from core.report import RunReport
from flows.decorator import flow
from flows.shared import TASK_WORKERS, execution, flow_result, run_name, settle_status, tag_run
from integrations.kubeconfig import allowed_contexts
from tasks.gate import TaskGate
from tasks.plan import load_plan
from tasks.records import TaskRecords
from tasks.reporter import TaskReporter


@flow(name=Flow.ROLLBACK.flow_name, flow_run_name=run_name(Flow.ROLLBACK),
      task_runner=ThreadPoolTaskRunner(max_workers=TASK_WORKERS))
def infra_rollback(plan: str = DEFAULT_PLAN, pr: int | None = None, execute: bool = False, force: bool = False,
                   rollout_timeout_s: float = 120, lock_timeout_s: float = 300, repository: str | None = None,
                   require_approval: bool = False, head_sha: str | None = None, from_record: str | None = None,
                   seed_fallback: bool = False) -> RunReport | State:
    """Preview by default; with `execute`, a PR number and a passing gate: restore exactly what apply captured.

    Only steps that ran are reversed, last first. A step whose object changed since apply is reported as
    drifted and left alone unless `force`. Plans applied by the old scripts (no record, no stamp) get the seed's
    rollback; with no record but objects stamped by infra-apply the run refuses, unless `from_record` (a record
    file, e.g. a saved plan.record.json, whose digest matches the plan) or `seed_fallback` (the seed's rollback
    anyway) is given.
    `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO; `require_approval`
    also asks for an approving review of the head SHA; `head_sha` is the head the labeled event carried.
    """
    tag_run(pr)
    gate = TaskGate()
    executing = execution(Flow.ROLLBACK, plan, pr, repository, require_approval, head_sha, lock_timeout_s, gate) \
        if execute else None
    records = TaskRecords()
    run = Rollback(plan, load=load_plan, records=records, reporter=TaskReporter(gate, records),
                   force=force, from_record=from_record, seed_fallback=seed_fallback,
                   rollout_timeout_s=rollout_timeout_s, execution=executing, contexts=allowed_contexts)
    return flow_result(Flow.ROLLBACK, plan, settle_status(gate, executing, run.run()))
