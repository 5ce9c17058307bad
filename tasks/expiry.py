"""Time-boxed plans in a flow: the rollback scheduled at an apply's expiry (integrations.rollback_schedule, as
tasks), and the gate of that scheduled run, which takes the place of the `rollback-plan` label."""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.conventions import Flow
from core.expiry import check_timing, lateness, scheduled_rollback_problem
from core.gate import GateDecision, GateRequirement, context_problem
from core.lifecycle.ports import Reporter, Scheduled
from core.plan import Plan
from core.record import record_name
from core.record_check import RecordCorrupt
from core.report import RunReport, StepResult
from integrations import rollback_schedule
from integrations.kubeconfig import allowed_contexts
from integrations.records import stored_digest
from tasks.links import run_page
from tasks.passing import as_is
from tasks.plan import parsed_plan
from tasks.records import load_record


@task(name="load_plan", cache_policy=NO_CACHE)
def timed_plan(path: str) -> Plan:
    """An executing apply's plan: validated, and a time-boxed one's expiry in the future and within
    INFRA_MAX_EXPIRY (bad input fails the run before anything else happens). Named as the preview's load, so the
    run's task list reads the same whichever it is."""
    plan = parsed_plan(Path(path))
    check_timing(str(plan.path), plan.expires, datetime.now(UTC), os.environ)
    return plan


@task(cache_policy=NO_CACHE)
def rollback_schedule_problem(plan: Plan) -> str | None:
    """Why the plan's rollback at expiry could not be scheduled (no server, no deployment), or None."""
    return rollback_schedule.problem(plan)


@task(cache_policy=NO_CACHE)
def schedule_rollback(plan: Plan, pr: int, repository: str | None, digest: str, at: datetime) -> Scheduled:
    """A run of infra-rollback/<target> Scheduled at `at`, naming the plan's record and its digest."""
    parameters = {"plan": plan.repository_path, "pr": pr, "repository": repository, "execute": True,
                  "expiry_record": record_name(plan), "expiry_digest": digest}
    made = rollback_schedule.schedule(plan, parameters, at)
    get_run_logger().info("rollback scheduled at %s: flow run %s", at.isoformat(), made.run_id)
    return Scheduled(made.run_id, made.at, run_page(made.run_id))


@task(cache_policy=NO_CACHE)
def cancel_scheduled_rollbacks(plan: Plan, why: str) -> list[str]:
    """Cancel the rollbacks still scheduled for the plan's record; a `note:` line per run, or why not."""
    cancelled, failed = rollback_schedule.cancel(plan, why)
    lines = [f"note: cancelled the rollback scheduled at expiry ({why}): {run_page(run_id) or run_id}"
             for run_id in cancelled]
    return lines + ([f"note: warning: could not cancel the rollback scheduled at expiry ({failed})"]
                    if failed else [])


class TaskExpiries:
    """The lifecycle's Expiries, each call a task."""

    def problem(self, plan: Plan) -> str | None:
        return rollback_schedule_problem(as_is(plan))

    def schedule(self, plan: Plan, pr: int, repository: str | None, digest: str, at: datetime) -> Scheduled:
        return schedule_rollback(as_is(plan), pr, repository, digest, at)

    def cancel(self, plan: Plan, why: str) -> list[str]:
        return cancel_scheduled_rollbacks(as_is(plan), why)


class ExpiryGate:
    """The gate of the run scheduled at an apply's expiry (flows/rollback.py, `expiry_record` and
    `expiry_digest`): instead of the `rollback-plan` label, the record this run names must be the plan's, verify
    (signature, anchor, content checks, as every load does), be bound to the run's PR, carry `expires_at` (made by
    an apply with `expires`), be due, and be unchanged since the apply scheduled this run (the digest). Checked
    again right before the first change, under the lock."""

    def __init__(self, record: str, digest: str) -> None:
        self.record, self.digest = record, digest
        self.plan: Plan | None = None

    def check(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        self.plan = plan
        decision = self._decide(requirement, plan)
        get_run_logger().info(decision.message)
        return decision

    def recheck(self, requirement: GateRequirement, first: GateDecision) -> GateDecision:
        assert self.plan is not None, "check comes first"
        return self._decide(requirement, self.plan)

    def _decide(self, requirement: GateRequirement, plan: Plan) -> GateDecision:
        problem = context_problem(plan.context, allowed_contexts())
        if problem is None and self.record != record_name(plan):
            problem = f"this run was scheduled for record {self.record}, and the plan's record is {record_name(plan)}"
        record = None
        if problem is None:
            try:
                record, _ = load_record(as_is(plan))
            except RecordCorrupt as corrupt:
                problem = str(corrupt)
        if problem is None and record is None:
            problem = "the plan has no apply record"
        if problem is None and record is not None:
            if record.pr != requirement.pr:
                problem = f"the record is PR #{record.pr}'s apply, not PR #{requirement.pr}'s"
            else:
                problem = scheduled_rollback_problem(record.expires_at, record.status, self.digest,
                                                     stored_digest(record), datetime.now(UTC))
        if problem is not None or record is None:
            return GateDecision(False, f"scheduled rollback at expiry: {problem}", None, None)
        return GateDecision(True, f"scheduled rollback at expiry ({record.expires_at}) of PR #{record.pr}'s apply, "
                            f"record {self.record}", record.head_sha, None)


@dataclass(frozen=True)
class LateReporter:
    """The scheduled rollback's reporter: its comment, artifact and log say when it was due and how late it
    started (a worker that was down starts it when it is back, as Prefect does for late runs)."""

    reporter: Reporter
    lines: tuple[str, ...]

    def report(self, flow: Flow, plan: Plan, results: Sequence[StepResult], executed: bool, lines: Sequence[str],
               requirement: GateRequirement | None) -> RunReport:
        return self.reporter.report(flow, plan, results, executed, [*self.lines, *lines], requirement)

    def fail(self, flow: Flow, plan: Plan, reason: str, lines: Sequence[str],
             requirement: GateRequirement) -> RunReport:
        return self.reporter.fail(flow, plan, reason, [*self.lines, *lines], requirement)


def started_late() -> str:
    """`note: scheduled rollback at expiry: started ... late (...)` for this flow run."""
    scheduled = flow_run.scheduled_start_time
    started = datetime.now(UTC)
    return f"note: scheduled rollback at expiry: {lateness(scheduled, started) if scheduled else 'started'}"
