"""Time-boxed plans: `expires:` in plan.yaml, when the applied change is rolled back by itself.

`expires` is an RFC 3339 time with its timezone (`2026-12-24T18:00:00+01:00`, `...Z`) or a duration counted from
the moment the apply finished (`72h`, `30m`, `2s`, `7d`). A plan whose expiry is not in the future, or lies
beyond INFRA_MAX_EXPIRY (a duration, default 30 days) from now, is bad input for the apply and for infra-plan;
a rollback reads the same plan long after, so only the syntax is checked when a plan is loaded
(`expiry_problem`), the timing where an apply or a review starts (`timing_problem`).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.conventions import Env
from core.errors import InputError
from core.k8s import shown
from core.vocabulary import RecordStatus

MAX_EXPIRY_ENV = Env.MAX_EXPIRY
DEFAULT_MAX_EXPIRY = timedelta(days=30)
DURATION_PATTERN = "[1-9][0-9]{0,6}[smhd]"
RFC3339_PATTERN = ("[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?"
                   "([Zz]|[+-][0-9]{2}:[0-9]{2})")
EXPIRES_PATTERN = f"{DURATION_PATTERN}|{RFC3339_PATTERN}"
EXPIRES_DESCRIPTION = ("A time-boxed plan: once applied, it is rolled back by itself at this time (RFC 3339 with a "
                       "timezone) or this long after the apply finished (72h, 30m, 2s, 7d). Must be in the future "
                       "and within INFRA_MAX_EXPIRY (default 30 days) when applied.")
_DURATION = re.compile(DURATION_PATTERN)
_RFC3339 = re.compile(RFC3339_PATTERN)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EXPECTED = "an RFC 3339 time with a timezone (2026-12-24T18:00:00Z) or a duration such as 72h, 30m, 2s, 7d"


@dataclass(frozen=True)
class Expiry:
    """When a time-boxed change ends: at `at` (absolute, UTC) or `after` the apply finished."""

    text: str
    at: datetime | None = None
    after: timedelta | None = None

    def resolve(self, applied_at: datetime) -> datetime:
        """The absolute UTC time the rollback is due, for an apply that finished at `applied_at`."""
        if self.at is not None:
            return self.at
        assert self.after is not None
        return applied_at.astimezone(UTC) + self.after


def duration(text: str) -> timedelta | None:
    """`72h`, `30m`, `2s`, `7d` as a timedelta; None for anything else."""
    if not _DURATION.fullmatch(text):
        return None
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


def _instant(text: str) -> datetime | None:
    if not _RFC3339.fullmatch(text):
        return None
    fraction = re.search(r"\.([0-9]+)", text)
    # Python reads up to microseconds: a longer fraction (RFC 3339 allows any) is cut, not refused.
    normal = text.upper().replace("Z", "+00:00")
    if fraction:
        normal = normal.replace(fraction.group(0), "." + fraction.group(1)[:6].ljust(6, "0"))
    try:
        return datetime.fromisoformat(normal).astimezone(UTC)
    except ValueError:
        return None


def parse_expiry(value: object) -> Expiry | None:
    """The expiry a plan's `expires` value gives, or None when it is not one (see `expiry_problem`)."""
    if not isinstance(value, str):
        return None
    after = duration(value)
    if after is not None:
        return Expiry(value, after=after)
    at = _instant(value)
    return Expiry(value, at=at) if at is not None else None


def expiry_problem(value: object) -> str | None:
    """Why `value` is not an `expires` value, or None."""
    if parse_expiry(value) is not None:
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]+", value):
        return f"{shown(value)} has no timezone: add Z or an offset such as +01:00"
    return f"{shown(value)} is not {EXPECTED}"


def max_expiry(env: Mapping[str, str]) -> timedelta:
    """INFRA_MAX_EXPIRY (a duration such as 720h), default 30 days; anything else is bad input."""
    text = (env.get(MAX_EXPIRY_ENV) or "").strip()
    if not text:
        return DEFAULT_MAX_EXPIRY
    limit = duration(text)
    if limit is None:
        raise InputError("environment", MAX_EXPIRY_ENV, f"{shown(text[:40])} is not a duration such as 720h or 30d")
    return limit


def timing_problem(expiry: Expiry, now: datetime, limit: timedelta) -> str | None:
    """Why an apply starting at `now` may not take this expiry: it is not in the future, or beyond `limit`."""
    due = expiry.resolve(now)
    if due <= now:
        return f"{expiry.text} is not in the future (it is {shown_time(now)} now)"
    if due - now > limit:
        return f"{expiry.text} is more than {shown_span(limit)} away ({MAX_EXPIRY_ENV})"
    return None


def shown_time(moment: datetime) -> str:
    """A UTC time as comments and statuses show it: `2026-12-24T17:00:00Z`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def shown_span(span: timedelta) -> str:
    """A span in its largest whole unit: `30d`, `72h`, `90s`, `1.5s`."""
    seconds = span.total_seconds()
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:.1f}s"


def lateness(scheduled: datetime, started: datetime) -> str:
    """How late a scheduled rollback started, for its comment."""
    late = (started - scheduled).total_seconds()
    if late < 1:
        return f"started on time (scheduled for {shown_time(scheduled)})"
    return f"started {shown_span(timedelta(seconds=round(late, 1)))} late (scheduled for {shown_time(scheduled)}, " \
           f"started {shown_time(started)})"


def check_timing(source: str, expiry: Expiry | None, now: datetime, env: Mapping[str, str]) -> None:
    """Raise InputError naming the plan file and `expires` when an apply starting `now` may not take it."""
    if expiry is None:
        return
    problem = timing_problem(expiry, now, max_expiry(env))
    if problem:
        raise InputError(source, "expires", problem)


class ScheduleFailed(Exception):
    """The rollback at expiry could not be scheduled (the Prefect server refused or did not answer)."""


def rolls_back_at(at: datetime, run: str) -> str:
    """The line an apply's comment, artifact and status carry about its scheduled rollback."""
    return f"rolls back at {shown_time(at)} (expires): scheduled run {run}"


EARLY_TOLERANCE = timedelta(seconds=5)
"""A scheduled run may start this much before its time (Prefect's scheduler and the worker's clock)."""


def parse_time(text: str) -> datetime:
    """A time a record stores (`now()`'s form, or `shown_time`'s) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def scheduled_rollback_problem(expires_at: str | None, status: str, given_digest: str, record_digest: str,
                               now: datetime) -> str | None:
    """Why the run scheduled at an apply's expiry may not roll back the record it names (None: it may). Only the
    record of an apply with `expires`, unchanged since (same digest), applied, and due, is rolled back without
    the rollback label: anything else waits for a reviewed `rollback-plan`."""
    if expires_at is None:
        return "the record was not made by an apply with expires: a rollback needs the rollback-plan label"
    if given_digest != record_digest:
        return (f"the record changed since this rollback was scheduled (digest {record_digest[:12]}, not "
                f"{given_digest[:12]}): only the run scheduled by the latest apply may roll it back")
    if status != RecordStatus.SUCCEEDED:
        return f"the record's apply is {status}, not succeeded"
    due = parse_time(expires_at)
    if now + EARLY_TOLERANCE < due:
        return f"it is not due until {shown_time(due)} (now {shown_time(now)})"
    return None


def will_roll_back(expiry: Expiry) -> str:
    """What the preview and the plan comment say of a time-boxed plan."""
    when = f"at {shown_time(expiry.at)}" if expiry.at is not None else f"{expiry.text} after the apply finishes"
    return (f"time-boxed (expires: {expiry.text}): once applied, this change is rolled back by itself {when}, by "
            "a scheduled infra-rollback run (no rollback-plan label needed)")


def rolls_back_in(lines: Sequence[str]) -> str | None:
    """`rolls back at <time>` when a report's lines say its apply scheduled its rollback (the `infra/apply`
    status carries it)."""
    prefix = "note: rolls back at "
    found = next((line for line in lines if line.startswith(prefix)), None)
    return found.removeprefix("note: ").split(" (expires)")[0] if found else None


def scheduled_options_problem(force: bool, from_record: str | None, seed_fallback: bool) -> str | None:
    """The run scheduled at expiry rolls back the stored record it was checked against, never forced: the
    options that would change either are refused with it."""
    given = [name for name, value in (("force", force), ("from_record", from_record), ("seed_fallback",
                                                                                     seed_fallback)) if value]
    return f"a rollback scheduled at expiry takes no {', '.join(given)}" if given else None
