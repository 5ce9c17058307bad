"""The lifecycle's reporter in a flow: the run's lines in the log, the step table as artifacts, and after an
execution the PR comment and label removal. Artifacts or a PR update that could not be done are `note:` lines;
they never change the run's outcome."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prefect import get_run_logger

from core.conventions import Flow
from core.gate import GateDecision, GateRequirement
from core.plan import Plan
from core.record import plan_digest, record_name
from core.report import Provenance, RunReport, StepResult, error_lines, failure, finished, notes_in
from tasks.artifacts import record_failure, record_results
from tasks.gate import report_to_pull_request
from tasks.kept import keep
from tasks.links import flow_run_url, pull_request_url
from tasks.passing import as_is


def unpublished(*notes: str | None) -> list[str]:
    return [f"note: {note}" for note in notes if note]


class Admission(Protocol):
    """The gate of an executing run (tasks.gate.TaskGate): the decision that let it run, once it did."""

    decision: GateDecision | None


class Recorded(Protocol):
    """The run's records (tasks.records.TaskRecords): the digest of its last save, once it saved."""

    last_digest: str | None


def provenance_of(plan: Plan, decision: GateDecision | None, recorded: Recorded | None) -> Provenance | None:
    """Who approved this execution and where it is recorded, with this flow run's link."""
    if decision is None:
        return None
    return Provenance(approver=decision.label_actor, permission=decision.label_actor_role,
                      labeled_at=decision.label_added_at, head_sha=decision.head_sha, record=record_name(plan),
                      plan_digest=plan_digest(plan), record_digest=recorded.last_digest if recorded else None,
                      run_url=flow_run_url())


@dataclass(frozen=True)
class TaskReporter:
    admission: Admission | None = None
    recorded: Recorded | None = None

    def report(self, flow: Flow, plan: Plan, results: Sequence[StepResult], executed: bool, lines: Sequence[str],
               requirement: GateRequirement | None) -> RunReport:
        logger = get_run_logger()
        decision = self.admission.decision if executed and self.admission else None
        provenance = provenance_of(plan, decision, self.recorded)
        for line in lines:
            logger.info(line)
        for line in error_lines(results):
            logger.error("%s", line)
        pr_url = pull_request_url(requirement) if requirement else None
        summary = record_results(flow, plan.target or plan.namespace, f"{flow.flow_name}: {plan.path}",
                                 plan.namespace, as_is(results), executed, notes_in(lines),
                                 [(f"PR #{requirement.pr}", pr_url)] if requirement and pr_url else [], provenance)
        warnings = report_to_pull_request(requirement, summary.markdown) if executed and requirement else []
        report = finished(results, plan.namespace, executed, [*lines, *unpublished(summary.note, *warnings)],
                          provenance)
        logger.info("%s", report.final)
        return keep(report)

    def fail(self, flow: Flow, plan: Plan, reason: str, lines: Sequence[str],
             requirement: GateRequirement) -> RunReport:
        get_run_logger().error("%s", reason)
        title = f"{flow.flow_name}: {plan.path}"
        summary = record_failure(flow, plan.target or plan.namespace, title, reason)
        warnings = report_to_pull_request(requirement, summary.markdown)
        return keep(failure(reason, [*lines, *unpublished(summary.note, *warnings)]))
