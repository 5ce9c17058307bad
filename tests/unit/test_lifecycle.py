"""The Apply and Rollback lifecycles over in-memory stand-ins: capture, reversal, drift, resume, atomic, waves."""

from dataclasses import dataclass, field, replace
from typing import Any

from cli.adapters import SummaryReporter
from core.errors import TemporaryError
from core.lifecycle.apply import Apply
from core.lifecycle.ports import Saving
from core.lifecycle.rollback import Rollback
from core.plan import Plan
from core.record import ApplyRecord
from core.report import RunReport
from core.vocabulary import Outcome, RecordStatus, StepStatus, StepType
from tests.unit.fakes import World


def apply(world: World, pr: int | None = 7, **options: Any) -> RunReport:
    return Apply(str(world.plan_path), world.load, world.records, world.reporter, world.execution(pr),
                 **options).run()


def rollback(world: World, **options: Any) -> RunReport:
    return Rollback(str(world.plan_path), world.load, world.records, world.reporter,
                    world.execution(flow="rollback"), **options).run()


def statuses(report: RunReport, step_type: StepType = StepType.ACTION) -> list[str]:
    assert report.document is not None
    return [r["status"] for r in report.document["results"] if r["type"] == step_type]


def record_of(world: World) -> Any:
    return world.records.stored[world.plan_path.as_posix()]


def test_apply_captures_before_states_and_saves_after_every_wave(world: World) -> None:
    report = apply(world)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert world.replicas("web") == 4 and world.cluster.find("HorizontalPodAutoscaler", "web") is not None
    record = record_of(world)
    assert record.status == RecordStatus.SUCCEEDED
    assert [step.before for step in record.steps[:2]] == [{"replicas": 2, "hpa": None}, {"replicas": 1, "hpa": None}]
    assert record.steps[2].before == {"target_replicas": 2}, "the HPA did not exist: only its target's replicas"
    assert world.cluster.waves_seen == [[1, 2], [3]], "web's HPA waits for web's scale; api runs beside it"
    saved = [[step.status for step in saved.steps] for saved in world.records.saves]
    assert saved == [["pending"] * 3, ["succeeded", "succeeded", "pending"], ["succeeded"] * 3, ["succeeded"] * 3]
    assert world.lock.holders == ["infra-apply PR #7"]


def test_a_waves_save_lands_while_the_next_wave_runs_and_in_order(world: World) -> None:
    landed_after: list[int] = []  # how many steps had run when each wave's save landed
    start_save = world.records.start_save

    def watched(plan: Plan, record: ApplyRecord) -> Saving:
        wait = start_save(plan, record)
        return lambda: (landed_after.append(len(world.cluster.ran)), wait())[1]

    world.records.start_save = watched  # type: ignore[method-assign]

    assert apply(world).final == Outcome.SUCCEEDED
    assert landed_after == [3, 3], "wave 1 (2 steps) saved once wave 2 had run; wave 2 before the last save"
    assert [saved.status for saved in world.records.saves] == [RecordStatus.RUNNING] * 3 + [RecordStatus.SUCCEEDED]


def test_a_run_stopped_by_an_error_leaves_no_save_under_way(world: World) -> None:
    """The lock is released right after: a save still under way could land on the next run's record."""
    capture, reads = world.cluster.capture, [0]

    def unreachable_after_the_steps(plan: Plan) -> list[dict[str, Any]]:
        reads[0] += 1
        if reads[0] > 1:
            raise TemporaryError("connection refused")
        return capture(plan)

    world.cluster.capture = unreachable_after_the_steps  # type: ignore[method-assign]

    report = apply(world)

    assert report.final == Outcome.FAILED and "could not be reached" in report.lines[-1]
    assert world.records.started == 2 and world.records.waited == 2
    assert [step.status for step in record_of(world).steps] == ["succeeded"] * 3


def test_rollback_restores_exactly_last_step_first(world: World) -> None:
    apply(world)
    world.cluster.ran.clear()

    report = rollback(world)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert [args[:2] for args in world.cluster.ran] == [("delete", "hpa"), ("scale", "deployment/api"),
                                                        ("scale", "deployment/web")]
    assert world.replicas("web") == 2 and world.replicas("api") == 1
    assert world.cluster.find("HorizontalPodAutoscaler", "web") is None
    assert record_of(world).status == RecordStatus.ROLLED_BACK


def test_a_drifted_object_is_left_alone_and_the_record_says_rollback_failed(world: World) -> None:
    apply(world)
    target = world.cluster.find("Deployment", "api")
    assert target is not None
    target["spec"]["replicas"] = 9  # someone scaled it by hand

    report = rollback(world)

    assert report.final == Outcome.FAILED
    assert statuses(report) == ["succeeded", "drifted", "succeeded"]
    assert world.replicas("api") == 9
    record = record_of(world)
    assert record.status == RecordStatus.ROLLBACK_FAILED and record.rollback.steps["2"] == "drifted"
    assert any(line.startswith("note: rollback incomplete") and "2 (deployment/api: drifted)" in line
               and "--force" in line for line in report.lines)

    forced = rollback(world, force=True)

    assert forced.final == Outcome.SUCCEEDED and world.replicas("api") == 1
    assert record_of(world).status == RecordStatus.ROLLED_BACK


def test_an_interrupted_apply_resumes_without_repeating_done_steps(world: World) -> None:
    world.cluster.failing.add(("apply", "hpa/web"))
    assert apply(world).final == Outcome.FAILED
    world.cluster.failing.clear()
    world.cluster.ran.clear()
    interrupted = replace(record_of(world), status=RecordStatus.RUNNING)
    world.records.stored[world.plan_path.as_posix()] = interrupted

    report = apply(world)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert "note: resuming an interrupted apply: 2 step(s) already done" in report.lines
    assert [args[0] for args in world.cluster.ran] == ["apply"], "only the step that had not run"
    assert record_of(world).steps[0].before == {"replicas": 2, "hpa": None}, "the first run's capture is kept"


def test_atomic_rolls_back_what_it_applied_through_rollback(world: World) -> None:
    world.cluster.failing.add(("apply", "hpa/web"))

    report = apply(world, atomic=True)

    assert report.final == Outcome.FAILED
    assert statuses(report) == ["succeeded", "succeeded", "failed"]
    assert statuses(report, StepType.ROLLBACK) == ["unchanged", "succeeded", "succeeded"]
    assert world.replicas("web") == 2 and world.replicas("api") == 1
    record = record_of(world)
    assert record.status == RecordStatus.ROLLED_BACK and record.finished_at is not None
    assert record.rollback.status == RecordStatus.SUCCEEDED


def test_an_undo_that_fails_makes_the_record_rollback_failed(world: World) -> None:
    world.cluster.failing.add(("apply", "hpa/web"))
    original = world.cluster._carry_out

    def undo_of_api_fails(step: Any) -> str | None:
        if step.args[0] == "scale" and step.summary.startswith("restored") and step.obj == "deployment/api":
            return "the server is on fire"
        return original(step)

    world.cluster._carry_out = undo_of_api_fails  # type: ignore[method-assign]

    report = apply(world, atomic=True)

    assert statuses(report, StepType.ROLLBACK) == ["unchanged", "failed", "succeeded"]
    assert world.replicas("web") == 2 and world.replicas("api") == 3
    record = record_of(world)
    assert record.status == RecordStatus.ROLLBACK_FAILED
    assert record.rollback.steps == {"3": "unchanged", "2": "failed", "1": "succeeded"}
    note = next(line for line in report.lines if line.startswith("note: rollback incomplete"))
    assert "deployment/api: failed" in note and "infra-rollback" in note

    again = apply(world)

    assert again.final == Outcome.FAILED, "re-applying would capture half-restored objects as 'before'"
    assert again.document is None, "a stop before any change has no step rows"
    assert "did not finish" in again.lines[-1] and again.lines[-1].endswith("; nothing was changed")
    assert world.replicas("api") == 3


def test_refusals_change_nothing(world: World) -> None:
    without_pr = apply(world, pr=None)
    assert without_pr.lines == ("Refusing to execute: --execute needs --pr=<number> (or PRNUM).",)
    world.gate.allowed = False
    assert apply(world).lines[-1] == "Refusing to execute: PR missing label."
    world.gate.allowed, world.gate.recheck_allowed = True, False
    late = apply(world)
    assert late.final == Outcome.SKIPPED and late.lines[-1] == "Refusing to execute: a commit came after the label."
    assert world.cluster.ran == [] and world.replicas("web") == 2
    assert world.records.saves == [], "nothing recorded before the recheck passed"


def test_preview_is_the_same_action_without_execution(world: World) -> None:
    report = Apply(str(world.plan_path), world.load, world.records, world.reporter).run()

    assert report.final == Outcome.SUCCEEDED
    assert report.lines[0] == "preview: kubectl -n shop scale deployment/web --replicas=4"
    assert report.lines[-1] == "note: label check not required in preview"
    assert statuses(report) == [StepStatus.PREVIEWED] * 3
    assert world.cluster.ran == [] and world.records.saves == []


def test_a_lost_lock_stops_the_run_before_its_next_wave(world: World) -> None:
    world.lock.held.lose_after = 3  # checked before the stamp, the first save and the first wave; lost after it

    report = apply(world)

    assert report.final == Outcome.FAILED and "stopped before its next write" in report.render()
    assert world.cluster.waves_seen == [[1, 2]], "the HPA wave must not run without the lock"
    assert world.replicas("web") == 4, "the first wave ran while the lock was held"
    assert len(world.records.saves) == 1, "a run that lost the lock writes no record"
    assert [step.status for step in record_of(world).steps] == ["pending"] * 3, \
        "the record is not saved without the lock: the run that holds it now judges by the live objects"


def test_a_lock_lost_before_the_first_save_changes_and_writes_nothing(world: World) -> None:
    world.lock.held.lose_after = 0

    report = apply(world)

    assert report.final == Outcome.FAILED and "stopped before its next write" in report.render()
    assert world.cluster.waves_seen == [] and world.records.saves == []


def test_a_failed_release_is_said_on_the_output(world: World) -> None:
    world.lock.held.release_error = "lease infra-orchestrator-lock was not released (connection refused)"

    report = apply(world)

    assert report.final == Outcome.SUCCEEDED
    assert "note: lease infra-orchestrator-lock was not released (connection refused)" in report.lines


@dataclass(frozen=True)
class NotingReporter(SummaryReporter):
    done: list[str] = field(default_factory=list)

    def report(self, *args: Any) -> RunReport:
        self.done.append("report")
        return super().report(*args)


def test_the_lock_is_let_go_once_the_record_is_final_and_before_the_report(world: World) -> None:
    """The release runs beside the report's publishing (the block's end waits for it), never before the last
    save: the lock guards the record too."""
    done = world.lock.held.done
    save = world.records.save
    world.records.save = lambda plan, record: (done.append(f"save {record.status}"), save(plan, record))[1]  # type: ignore[method-assign]
    world.reporter = NotingReporter(done)

    assert apply(world).final == Outcome.SUCCEEDED
    assert world.lock.held.let_go_after == ["save running", "save running", "save running", "save succeeded"]
    assert done[-1] == "report"

    done.clear()
    assert rollback(world).final == Outcome.SUCCEEDED
    assert world.lock.held.let_go_after == ["save rolled-back"] and done == ["save rolled-back", "report"]


def test_an_unreadable_record_refuses_the_rollback_instead_of_guessing(world: World) -> None:
    apply(world)
    world.cluster.ran.clear()
    world.records.unreadable = "plan.record.json"

    report = rollback(world)

    assert report.final == Outcome.SKIPPED and world.cluster.ran == []
    assert "plan.record.json: the apply record exists but cannot be read" in report.render()


def test_rollback_change_rows_read_from_what_apply_left_to_what_they_restore(world: World) -> None:
    apply(world)

    report = rollback(world)

    assert report.document is not None
    rows = {(change["object"], change["field"]): (change["before"], change["after"])
            for result in report.document["results"] for change in result.get("changes", [])}
    assert rows[("deployment/web", "replicas")] == ("4", "2"), rows
    assert rows[("deployment/api", "replicas")] == ("3", "1"), rows
    assert rows[("hpa/web", "minReplicas")][1] == "—", "the HPA is deleted"
    assert "?" not in {value for pair in rows.values() for value in pair}, "every undo row says what it found"


def test_a_plan_without_actions_writes_no_record(world: World) -> None:
    """A record needs a step (a rollback refuses one without): an empty plan applies nothing and records nothing."""
    world.plan_path.write_text("namespace: shop\nactions: []\n")

    report = apply(world)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert world.records.saves == [] and "note: the plan has no actions: nothing to apply, and no record" in \
        report.lines


def test_a_chain_of_applies_of_an_edited_plan_rolls_back_to_before_the_first(world: World) -> None:
    assert apply(world).final == Outcome.SUCCEEDED and world.replicas("web") == 4
    world.plan_path.write_text(world.plan_path.read_text().replace("name: web, replicas: 4", "name: web, replicas: 5"))
    second = apply(world)
    assert second.final == Outcome.SUCCEEDED and world.replicas("web") == 5, second.render()
    assert len(record_of(world).earlier) == 1

    assert rollback(world).final == Outcome.SUCCEEDED
    assert world.replicas("web") == 2 and world.replicas("api") == 1
    assert world.cluster.find("HorizontalPodAutoscaler", "web") is None


def test_a_record_of_another_prs_apply_is_not_rolled_back(world: World) -> None:
    assert apply(world, pr=7).final == Outcome.SUCCEEDED

    report = Rollback(str(world.plan_path), world.load, world.records, world.reporter,
                      world.execution(pr=8, flow="rollback")).run()

    assert report.final == Outcome.FAILED and world.replicas("web") == 4
    assert report.lines[-1].startswith("error: record read from memory: corrupt apply record: it is the record of "
                                       "PR #7's apply, not of PR #8; nothing was changed: roll back from PR #7")
