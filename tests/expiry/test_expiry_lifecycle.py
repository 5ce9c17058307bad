"""A time-boxed plan through the Apply and Rollback lifecycles over the in-memory stand-ins (tests/unit/fakes):
refused before any change when its rollback cannot be scheduled, scheduled after a successful apply with the
record's digest, earlier runs cancelled by a re-apply and by a manual rollback."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.expiry import ScheduleFailed, parse_time
from core.lifecycle.apply import Apply
from core.lifecycle.ports import Scheduled
from core.lifecycle.rollback import Rollback
from core.plan import Plan
from core.record import ApplyRecord, Saved
from core.vocabulary import Outcome, RecordStatus
from tests.unit.fakes import PLAN, FakeCluster, FakeRecords, World, deployment

TIMED = PLAN.replace("actions:", "expires: 2h\nactions:")


@dataclass
class FakeExpiries:
    refuse: str | None = None
    fail: bool = False
    scheduled: list[tuple[int, str, datetime]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def problem(self, plan: Plan) -> str | None:
        return self.refuse

    def schedule(self, plan: Plan, pr: int, repository: str | None, digest: str, at: datetime) -> Scheduled:
        if self.fail:
            raise ScheduleFailed("the server went away")
        self.scheduled.append((pr, digest, at))
        return Scheduled(f"run-{len(self.scheduled)}", at, f"http://ui/runs/flow-run/run-{len(self.scheduled)}")

    def cancel(self, plan: Plan, why: str) -> list[str]:
        self.cancelled.append(why)
        return [f"note: cancelled ({why})"]


class DigestRecords(FakeRecords):
    def save(self, plan: Plan, record: ApplyRecord) -> Saved:
        saved = super().save(plan, record)
        return replace(saved, digest=f"digest-{saved.revision}")


def _world(tmp_path: Path, text: str) -> World:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    return World(plan, FakeCluster([deployment("web", 2), deployment("api", 1)], directory=tmp_path),
                 records=DigestRecords())


@pytest.fixture
def timed(tmp_path: Path) -> World:
    return _world(tmp_path, TIMED)


def _apply(world: World, expiries: FakeExpiries | None) -> Outcome:
    report = Apply(str(world.plan_path), world.load, world.records, world.reporter, world.execution(),
                   expiries=expiries).run()
    world.last = report  # type: ignore[attr-defined]
    return report.final


def test_a_time_boxed_apply_whose_rollback_cannot_be_scheduled_changes_nothing(timed: World) -> None:
    expiries = FakeExpiries(refuse="the Prefect server has no deployment infra-rollback/shop")

    assert _apply(timed, expiries) == Outcome.SKIPPED
    assert timed.last.lines[-1] == (  # type: ignore[attr-defined]
        "Refusing to execute: expires: the rollback at expiry cannot be scheduled (the Prefect server has no "
        "deployment infra-rollback/shop); a time-boxed change is applied only when its rollback is scheduled.")
    assert timed.replicas("web") == 2 and timed.cluster.ran == []
    assert _apply(timed, None) == Outcome.SKIPPED, "no scheduler at all: refused too"
    assert timed.cluster.ran == []


def test_a_successful_time_boxed_apply_schedules_its_rollback_with_the_records_digest(timed: World) -> None:
    expiries = FakeExpiries()
    before = datetime.now(UTC)

    assert _apply(timed, expiries) == Outcome.SUCCEEDED
    record = timed.records.stored[timed.plan_path.as_posix()]
    [(pr, digest, at)] = expiries.scheduled
    assert pr == 7 and digest == f"digest-{record.revision}", "the digest of the record's last save"
    assert record.expires_at is not None and parse_time(record.expires_at) == at
    assert before + timedelta(hours=2) - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(hours=2)
    lines = timed.last.lines  # type: ignore[attr-defined]
    assert f"note: rolls back at {record.expires_at} (expires): scheduled run http://ui/runs/flow-run/run-1" in lines
    assert expiries.cancelled == ["replaced by a new apply of the plan"]


def test_a_plan_without_expires_schedules_nothing_and_cancels_what_an_earlier_apply_scheduled(
        tmp_path: Path) -> None:
    world = _world(tmp_path, PLAN)
    expiries = FakeExpiries()
    assert _apply(world, expiries) == Outcome.SUCCEEDED
    assert expiries.scheduled == [] and expiries.cancelled == [], "never time-boxed: nothing to ask Prefect"
    assert world.records.stored[world.plan_path.as_posix()].expires_at is None

    world.plan_path.write_text(TIMED.replace("replicas: 4", "replicas: 5"))
    assert _apply(world, expiries) == Outcome.SUCCEEDED
    assert len(expiries.scheduled) == 1
    world.plan_path.write_text(PLAN.replace("replicas: 4", "replicas: 6"))  # the time box taken out again

    assert _apply(world, expiries) == Outcome.SUCCEEDED
    assert len(expiries.scheduled) == 1
    assert expiries.cancelled == ["replaced by a new apply of the plan"] * 2


def test_a_rollback_of_a_record_without_expires_asks_prefect_nothing(tmp_path: Path) -> None:
    world = _world(tmp_path, PLAN)
    assert _apply(world, None) == Outcome.SUCCEEDED
    expiries = FakeExpiries()

    report = Rollback(str(world.plan_path), world.load, world.records, world.reporter,
                      world.execution(flow="rollback"), expiries=expiries).run()

    assert report.final == Outcome.SUCCEEDED and expiries.cancelled == []


def test_a_schedule_that_fails_after_the_change_says_so(timed: World) -> None:
    assert _apply(timed, FakeExpiries(fail=True)) == Outcome.SUCCEEDED
    assert any(line.startswith("note: warning: the rollback at ") and "could not be scheduled (the server went "
               "away): label the PR rollback-plan by then" in line for line in timed.last.lines)  # type: ignore


def test_a_manual_rollback_first_cancels_the_scheduled_one(timed: World) -> None:
    assert _apply(timed, FakeExpiries()) == Outcome.SUCCEEDED
    expiries = FakeExpiries()

    report = Rollback(str(timed.plan_path), timed.load, timed.records, timed.reporter,
                      timed.execution(flow="rollback"), expiries=expiries).run()

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert expiries.cancelled == ["a rollback ran first"]
    assert "note: cancelled (a rollback ran first)" in report.lines
    assert timed.records.stored[timed.plan_path.as_posix()].status == RecordStatus.ROLLED_BACK
