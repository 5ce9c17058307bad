"""What Apply and Rollback share: the lifecycle's opening (load, preview or gate, lock), the recheck, and
rollout verification."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from core.apply import touched_workloads
from core.changes import planned_state
from core.conventions import REPOSITORY_PATTERN, Flow
from core.errors import LeaseLost, PermanentError, RecordUnreadable, Stopped, TemporaryError
from core.gate import GateDecision, GateRequirement, context_problem
from core.lifecycle.ports import Cluster, Execution, Held, Objects, Records, Refused, Reporter
from core.plan import Action, Plan
from core.record import record_name
from core.report import RunReport, StepResult, preview_lines, refusal, with_lines
from core.state import Objects as LiveObjects
from core.state import state_of
from core.steps import Step, rollout_steps
from core.vocabulary import Outcome, StepStatus

PREVIEW_GATE_NOTE = "label check not required in preview"
PREVIEWED = "previewed: nothing changed"


def preview_report(flow: Flow, plan: Plan, steps: Sequence[Step], notes: Sequence[str], reporter: Reporter,
                   live: LiveObjects | None = None) -> RunReport:
    """Every step as `preview: kubectl -n <ns> <args>`, then the notes, and `previewed: nothing changed` before
    the last line; nothing runs. With `live` (apply's objects as read now), each step shows live → planned."""
    lines = [*preview_lines(steps, plan.namespace), *(f"note: {note}" for note in notes),
             f"note: {PREVIEW_GATE_NOTE}"]
    results = [StepResult(step, StepStatus.PREVIEWED) for step in steps]
    if live is not None:
        results = [replace(result, before=state_of(action, live), after=planned_state(plan, action,
                                                                                      state_of(action, live)))
                   for result, action in zip(results, plan.actions, strict=True)]
    return replace(reporter.report(flow, plan, results, False, lines, None), closing=(PREVIEWED,))


def admitted(plan: Plan, execution: Execution) -> tuple[GateRequirement, GateDecision]:
    """Gates 2 to 4: a PR was given, the repository is owner/name, and the label gate passes."""
    requirement = execution.requirement
    if requirement is None:
        raise Refused("--execute needs --pr=<number> (or PRNUM)")
    if requirement.repository is not None and not REPOSITORY_PATTERN.fullmatch(requirement.repository):
        raise Refused(f"repository {requirement.repository!r} is not owner/name")
    decision = execution.gate.check(requirement, plan)
    if not decision.allowed:
        raise Refused(decision.reason)
    return requirement, decision


def recheck(execution: Execution, requirement: GateRequirement, decision: GateDecision,
            lines: Sequence[str]) -> None:
    """Time of check against time of use, right before the first change; raises Refused (keeping `lines`)."""
    again = execution.gate.recheck(requirement, decision)
    if not again.allowed:
        raise Refused(again.reason, lines)


def lock_holder(flow: Flow, requirement: GateRequirement) -> str:
    return f"{flow.flow_name} PR #{requirement.pr}"


def verify_rollouts(cluster: Cluster, plan: Plan, changes: Sequence[Action], first_number: int,
                    timeout_s: float, listing: Objects | None = None) -> list[StepResult]:
    """`rollout status` for every workload whose replicas or template the given changes touched (but those that
    `listing`, read after the changes, shows rolled out)."""
    steps = rollout_steps(touched_workloads(changes), first_number, timeout_s)
    return cluster.verify(plan, steps, timeout_s, listing) if steps else []


@dataclass(frozen=True)
class Lifecycle(ABC):
    """One action (after Helm's pkg/action): options as fields, `run` = load, then the preview or the gate, the
    lock and the locked part. Without `execution` it is the preview: nothing is gated, locked or changed."""

    flow: ClassVar[Flow]
    plan_path: str
    load: Callable[[str], Plan]
    records: Records
    reporter: Reporter
    execution: Execution | None = None
    rollout_timeout_s: float = 120
    contexts: Callable[[], Collection[str]] | None = None
    """The kube contexts this worker may change (INFRA_CONTEXTS), read only for a plan that names a context: its
    preview says when executing would refuse it (the gate does the refusing)."""

    def run(self) -> RunReport:
        plan = self.load(self.plan_path)
        if self.execution is None:
            return with_lines(self.preview(plan), self._context_notes(plan))
        try:
            requirement, decision = admitted(plan, self.execution)
            with self.execution.lock.hold(plan, lock_holder(self.flow, requirement)) as held:
                report = self.locked(plan, self.execution, requirement, decision, held)
        except Refused as refused:
            return refusal(refused.reason, refused.lines)
        except RecordUnreadable as unreadable:
            return refusal(f"{unreadable}; refusing rather than guessing what was applied: put the record back "
                           "(the ConfigMap, or the plan's .record.json next to it) and run again, or roll back "
                           "from a saved copy with --from-record FILE (--seed-fallback runs the old scripts' "
                           "rollback instead)")
        except Stopped as stopped:
            consistent = f"; record {record_name(plan)} is consistent" if stopped.locked else ""
            return RunReport((f"error: {stopped}{consistent}",), None, Outcome.FAILED)
        except LeaseLost as lost:
            return RunReport((f"error: {lost}: this run lost the lock and stopped before its next write",), None,
                             Outcome.FAILED)
        except TemporaryError as error:
            return self.reporter.fail(self.flow, plan, f"the cluster could not be reached ({error})", [],
                                      requirement)
        except PermanentError as error:
            return self.reporter.fail(self.flow, plan, f"the cluster refused the run ({error})", [], requirement)
        return with_lines(report, [f"note: {held.release_error}"] if held.release_error else [])

    def _context_notes(self, plan: Plan) -> list[str]:
        if plan.context is None or self.contexts is None:
            return []
        problem = context_problem(plan.context, self.contexts())
        return [f"note: executing would refuse: {problem}"] if problem else []

    @abstractmethod
    def preview(self, plan: Plan) -> RunReport:
        """The steps the run would take, as `preview:` lines."""

    @abstractmethod
    def locked(self, plan: Plan, execution: Execution, requirement: GateRequirement, decision: GateDecision,
               held: Held) -> RunReport:
        """Everything after the gate, while the target's lock is held."""
