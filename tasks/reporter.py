"""The lifecycle's reporter in a flow: the run's lines in the log, the step table as artifacts, and after an
execution the PR comment and label removal. Artifacts or a PR update that could not be done are `note:` lines;
they never change the run's outcome."""

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import get_run_logger

from core.conventions import Flow
from core.gate import GateRequirement
from core.plan import Plan
from core.report import RunReport, StepResult, failure, finished, notes_in
from tasks.artifacts import record_failure, record_results
from tasks.gate import report_to_pull_request
from tasks.links import pull_request_url
from tasks.passing import as_is


class LastReport:
    """The last report this process produced, kept outside Prefect: when the server goes away after the work,
    Prefect's engine cannot record the run's final state and raises, and the CLI still prints this outcome."""

    report: RunReport | None = None

    @classmethod
    def keep(cls, report: RunReport) -> RunReport:
        cls.report = report
        return report


def unpublished(*notes: str | None) -> list[str]:
    return [f"note: {note}" for note in notes if note]


@dataclass(frozen=True)
class TaskReporter:
    def report(self, flow: Flow, plan: Plan, results: Sequence[StepResult], executed: bool, lines: Sequence[str],
               requirement: GateRequirement | None) -> RunReport:
        logger = get_run_logger()
        for line in lines:
            logger.info(line)
        pr_url = pull_request_url(requirement) if requirement else None
        summary = record_results(flow, plan.target or plan.namespace, f"{flow.flow_name}: {plan.path}",
                                 plan.namespace, as_is(results), executed, notes_in(lines),
                                 [(f"PR #{requirement.pr}", pr_url)] if requirement and pr_url else [])
        warnings = report_to_pull_request(requirement, summary.markdown) if executed and requirement else []
        report = finished(results, plan.namespace, executed, [*lines, *unpublished(summary.note, *warnings)])
        logger.info("%s", report.final)
        return LastReport.keep(report)

    def fail(self, flow: Flow, plan: Plan, reason: str, lines: Sequence[str],
             requirement: GateRequirement) -> RunReport:
        get_run_logger().error("%s", reason)
        title = f"{flow.flow_name}: {plan.path}"
        summary = record_failure(flow, plan.target or plan.namespace, title, reason)
        warnings = report_to_pull_request(requirement, summary.markdown)
        return LastReport.keep(failure(reason, [*lines, *unpublished(summary.note, *warnings)]))
