"""infra-rollback: reverse what infra-apply did, once the PR carries `rollback-plan`."""

from prefect.client.schemas.objects import State
from prefect.task_runners import ThreadPoolTaskRunner

from core.conventions import DEFAULT_PLAN, Flow
from core.errors import InputError
from core.expiry import scheduled_options_problem
from core.lifecycle.ports import Execution, Reporter
from core.lifecycle.rollback import Rollback
from core.report import RunReport
from flows.decorator import flow
from flows.shared import TASK_WORKERS, execution, flow_result, gate_requirement, run_name, settle_status, tag_run
from integrations.kubeconfig import allowed_contexts
from tasks.expiry import ExpiryGate, LateReporter, TaskExpiries, started_late
from tasks.gate import TaskGate
from tasks.kube import TaskCluster
from tasks.lock import TaskLock
from tasks.plan import load_plan
from tasks.records import TaskRecords
from tasks.reporter import TaskReporter


@flow(name=Flow.ROLLBACK.flow_name, flow_run_name=run_name(Flow.ROLLBACK),
      task_runner=ThreadPoolTaskRunner(max_workers=TASK_WORKERS))
def infra_rollback(plan: str = DEFAULT_PLAN, pr: int | None = None, execute: bool = False, force: bool = False,
                   rollout_timeout_s: float = 120, lock_timeout_s: float = 300, repository: str | None = None,
                   require_approval: bool = False, head_sha: str | None = None, from_record: str | None = None,
                   seed_fallback: bool = False, expiry_record: str | None = None,
                   expiry_digest: str | None = None) -> RunReport | State:
    """Preview by default; with `execute`, a PR number and a passing gate: restore exactly what apply captured.

    Only steps that ran are reversed, last first. A step whose object changed since apply is reported as
    drifted and left alone unless `force`. Plans applied by the old scripts (no record, no stamp) get the seed's
    rollback; with no record but objects stamped by infra-apply the run refuses, unless `from_record` (a record
    file, e.g. a saved plan.record.json, whose digest matches the plan) or `seed_fallback` (the seed's rollback
    anyway) is given.
    `repository` ("owner/name", from the triggering event) overrides GH_OWNER/GH_REPO; `require_approval`
    also asks for an approving review of the head SHA; `head_sha` is the head the labeled event carried.
    `expiry_record` and `expiry_digest` are given only by the run a time-boxed apply scheduled at its expiry
    (tasks/expiry.py): that run needs no label, the apply's approval covered it, but it is refused unless the
    plan's record is the one named, unchanged since (the digest), made by an apply with `expires`, and due; every
    other check stays (record verification, the lock, drift: drifted objects are reported and left alone). Any
    other rollback first cancels the run scheduled at expiry.
    """
    tag_run(pr)
    gate = TaskGate()
    records = TaskRecords()
    reporter: Reporter
    executing: Execution | None
    scheduled = expiry_record is not None or expiry_digest is not None
    if scheduled:
        problem = scheduled_options_problem(force, from_record, seed_fallback)
        if problem:
            raise InputError("parameters", "expiry_record", problem)
        executing = Execution(TaskCluster(), ExpiryGate(expiry_record or "", expiry_digest or ""),
                              TaskLock(lock_timeout_s), gate_requirement(Flow.ROLLBACK, plan, pr, repository, False))
        reporter, expiries = LateReporter(TaskReporter(None, records), (started_late(),)), None
    else:
        executing = execution(Flow.ROLLBACK, plan, pr, repository, require_approval, head_sha, lock_timeout_s, gate) \
            if execute else None
        reporter, expiries = TaskReporter(gate, records), TaskExpiries() if execute else None
    run = Rollback(plan, load=load_plan, records=records, reporter=reporter, force=force, from_record=from_record,
                   seed_fallback=seed_fallback, rollout_timeout_s=rollout_timeout_s, execution=executing,
                   contexts=allowed_contexts, expiries=expiries)
    report = run.run()
    # The scheduled run has no label gate: its outcome is its comment and artifact, not a label or a status
    return flow_result(Flow.ROLLBACK, plan, report if scheduled else settle_status(gate, executing, report))
