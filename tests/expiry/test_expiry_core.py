"""core.expiry: the `expires:` field's syntax, its timing against the apply, and INFRA_MAX_EXPIRY; and the plan
loader and the CLI refusing a bad one as bad input (one line naming the file and field, exit 2)."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import InputError
from core.expiry import (
    DEFAULT_MAX_EXPIRY,
    Expiry,
    check_timing,
    expiry_problem,
    lateness,
    max_expiry,
    parse_expiry,
    timing_problem,
)
from core.plan import load_plan

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "after"), [("72h", timedelta(hours=72)), ("30m", timedelta(minutes=30)),
                                             ("2s", timedelta(seconds=2)), ("7d", timedelta(days=7))])
def test_a_duration_counts_from_the_apply(text: str, after: timedelta) -> None:
    expiry = parse_expiry(text)
    assert expiry == Expiry(text, after=after)
    assert expiry.resolve(NOW) == NOW + after


@pytest.mark.parametrize(("text", "at"), [
    ("2026-12-24T18:00:00Z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
    ("2026-12-24T18:00:00+01:00", datetime(2026, 12, 24, 17, tzinfo=UTC)),
    ("2026-12-24t18:00:00.123456789-05:30", datetime(2026, 12, 24, 23, 30, 0, 123456, tzinfo=UTC)),
])
def test_an_rfc3339_time_resolves_to_itself_in_utc(text: str, at: datetime) -> None:
    expiry = parse_expiry(text)
    assert expiry is not None and expiry.at == at
    assert expiry.resolve(NOW) == at


@pytest.mark.parametrize(("value", "problem"), [
    ("2026-12-24T18:00:00", "'2026-12-24T18:00:00' has no timezone: add Z or an offset such as +01:00"),
    ("72", "'72' is not an RFC 3339 time with a timezone"),
    ("0s", "'0s' is not an RFC 3339 time"),
    ("1w", "'1w' is not an RFC 3339 time"),
    ("2026-13-45T18:00:00Z", "'2026-13-45T18:00:00Z' is not an RFC 3339 time"),
    (72, "72 is not an RFC 3339 time"),
])
def test_anything_else_is_refused_saying_what_is_expected(value: object, problem: str) -> None:
    found = expiry_problem(value)
    assert found is not None and found.startswith(problem), found
    assert parse_expiry(value) is None


def test_the_expiry_must_be_in_the_future_and_within_the_limit() -> None:
    limit = timedelta(days=30)
    assert timing_problem(Expiry("72h", after=timedelta(hours=72)), NOW, limit) is None
    assert timing_problem(Expiry("2026-12-01T00:00:00Z", at=datetime(2026, 12, 1, tzinfo=UTC)), NOW, limit) == \
        "2026-12-01T00:00:00Z is not in the future (it is 2026-12-07T12:00:00Z now)"
    assert timing_problem(Expiry("31d", after=timedelta(days=31)), NOW, limit) == \
        "31d is more than 30d away (INFRA_MAX_EXPIRY)"


def test_infra_max_expiry_is_a_duration_defaulting_to_30_days() -> None:
    assert max_expiry({}) == DEFAULT_MAX_EXPIRY == timedelta(days=30)
    assert max_expiry({"INFRA_MAX_EXPIRY": "2h"}) == timedelta(hours=2)
    with pytest.raises(InputError) as raised:
        max_expiry({"INFRA_MAX_EXPIRY": "two days"})
    assert str(raised.value) == "environment: INFRA_MAX_EXPIRY: 'two days' is not a duration such as 720h or 30d"
    with pytest.raises(InputError) as raised:
        check_timing("plan.yaml", parse_expiry("3h"), NOW, {"INFRA_MAX_EXPIRY": "2h"})
    assert str(raised.value) == "plan.yaml: expires: 3h is more than 2h away (INFRA_MAX_EXPIRY)"


def test_lateness_says_scheduled_and_actual_start() -> None:
    assert lateness(NOW, NOW + timedelta(seconds=0.4)) == "started on time (scheduled for 2026-12-07T12:00:00Z)"
    assert lateness(NOW, NOW + timedelta(minutes=5)) == \
        "started 5m late (scheduled for 2026-12-07T12:00:00Z, started 2026-12-07T12:05:00Z)"


PLAN = ("namespace: shop\ntarget: prod\nexpires: {expires}\n"
        "actions:\n  - {{type: scale_workload, name: web, replicas: 4}}\n")


def test_the_plan_keeps_its_expiry(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(expires="72h"))
    assert load_plan(path).expires == Expiry("72h", after=timedelta(hours=72))
    path.write_text(PLAN.format(expires="2026-12-24T18:00:00Z"))  # YAML 1.1 would read a timestamp: kept as text
    assert load_plan(path).expires == Expiry("2026-12-24T18:00:00Z", at=datetime(2026, 12, 24, 18, tzinfo=UTC))
    path.write_text(PLAN.format(expires="soon"))
    with pytest.raises(InputError) as raised:
        load_plan(path)
    assert raised.value.field == "expires"


def _cli(command: str, plan: Path, **env: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / command
    return subprocess.run([str(binary), f"--plan={plan}"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/nonexistent", **env})


@pytest.mark.parametrize("command", ["infra-apply", "infra-plan"])
def test_an_expiry_in_the_past_or_too_far_is_bad_input_for_apply_and_plan(tmp_path: Path, command: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(expires="2020-01-01T00:00:00Z"))

    past = _cli(command, plan)

    assert past.returncode == 2, past.stdout + past.stderr
    assert past.stderr.startswith(f"error: {plan}: expires: 2020-01-01T00:00:00Z is not in the future (it is "), \
        past.stderr
    assert len(past.stderr.splitlines()) == 1 and past.stdout == ""

    plan.write_text(PLAN.format(expires="45d"))
    far = _cli(command, plan)

    assert far.returncode == 2
    assert far.stderr == f"error: {plan}: expires: 45d is more than 30d away (INFRA_MAX_EXPIRY)\n"

    allowed = _cli(command, plan, INFRA_MAX_EXPIRY="60d")
    assert "expires" not in allowed.stderr, allowed.stderr


def test_the_rollback_reads_a_plan_whose_expiry_has_passed(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(expires="2020-01-01T00:00:00Z"))

    result = _cli("infra-rollback", plan)

    assert "expires" not in result.stderr, result.stderr


def test_only_the_due_unchanged_record_of_a_time_boxed_apply_is_rolled_back_without_the_label() -> None:
    from core.expiry import scheduled_rollback_problem

    due = "2026-12-07T12:00:00Z"
    assert scheduled_rollback_problem(due, "succeeded", "d1", "d1", NOW) is None
    assert scheduled_rollback_problem(None, "succeeded", "d1", "d1", NOW) == (
        "the record was not made by an apply with expires: a rollback needs the rollback-plan label")
    assert scheduled_rollback_problem(due, "succeeded", "aaaa", "bbbb", NOW) == (
        "the record changed since this rollback was scheduled (digest bbbb, not aaaa): only the run scheduled by "
        "the latest apply may roll it back")
    assert scheduled_rollback_problem(due, "rolled-back", "d1", "d1", NOW) == (
        "the record's apply is rolled-back, not succeeded")
    assert scheduled_rollback_problem(due, "succeeded", "d1", "d1", NOW - timedelta(minutes=1)) == (
        "it is not due until 2026-12-07T12:00:00Z (now 2026-12-07T11:59:00Z)")


def test_the_scheduled_rollback_takes_no_option_that_would_change_what_was_checked() -> None:
    from core.expiry import scheduled_options_problem

    assert scheduled_options_problem(False, None, False) is None
    assert scheduled_options_problem(True, "saved.json", True) == (
        "a rollback scheduled at expiry takes no force, from_record, seed_fallback")


def test_only_a_time_boxed_records_stored_form_names_expires_at() -> None:
    from core.record import ApplyRecord, StepRecord, from_data

    record = ApplyRecord(plan="plan.yaml", namespace="shop", target="prod", digest="d", status="succeeded",
                         started_at="2026-12-07T12:00:00.000Z", steps=(StepRecord(1, "scale_workload", "deployment/web",
                                                                                  "scale"),))
    assert "expires_at" not in record.as_data(), "a record older workers read as before"
    timed = ApplyRecord(**{**record.__dict__, "expires_at": "2026-12-07T14:00:00Z"})
    assert timed.as_data()["expires_at"] == "2026-12-07T14:00:00Z"
    assert from_data(timed.as_data()).expires_at == "2026-12-07T14:00:00Z"
    assert from_data(record.as_data()).expires_at is None
