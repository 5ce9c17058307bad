"""The lifecycle's reporter in a flow: the run's lines in the log, the step table as artifacts, and after an
execution the PR comment and label removal."""

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import get_run_logger

from core.conventions import Flow
from core.gate import GateRequirement
from core.plan import Plan
from core.report import RunReport, StepResult, failure, finished, notes_in
from tasks.artifacts import record_failure, record_results
from tasks.gate import report_to_pull_request


@dataclass(frozen=True)
class TaskReporter:
    def report(self, flow: Flow, plan: Plan, results: Sequence[StepResult], executed: bool, lines: Sequence[str],
               requirement: GateRequirement | None) -> RunReport:
        logger = get_run_logger()
        for line in lines:
            logger.info(line)
        markdown = record_results(flow, plan.target or plan.namespace, f"{flow.flow_name}: {plan.path}",
                                  plan.namespace, results, executed, notes_in(lines))
        if executed and requirement is not None:
            warning = report_to_pull_request(requirement, markdown)
            if warning:
                lines = [*lines, f"note: {warning}"]
        report = finished(results, plan.namespace, executed, lines)
        logger.info("%s", report.final)
        return report

    def fail(self, flow: Flow, plan: Plan, reason: str, lines: Sequence[str],
             requirement: GateRequirement) -> RunReport:
        get_run_logger().error("%s", reason)
        title = f"{flow.flow_name}: {plan.path}"
        markdown = record_failure(flow, plan.target or plan.namespace, title, reason)
        warning = report_to_pull_request(requirement, markdown, remove_label=False)
        return failure(reason, [*lines, *([f"note: {warning}"] if warning else [])])
