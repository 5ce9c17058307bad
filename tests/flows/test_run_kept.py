"""A Prefect outage seen while publishing one run's artifacts stops that run's further artifact calls, and only
that run's: the next run in the same process publishes again."""

import httpx

from tasks.artifacts import publish
from tasks.kept import keeping


def test_an_outage_is_remembered_for_the_run_that_saw_it_only() -> None:
    calls: list[str] = []

    def gone() -> None:
        calls.append("gone")
        raise httpx.ConnectError("connection refused")

    with keeping():
        first = publish("apply-prod", gone, lambda: calls.append("table"))
        again = publish("apply-prod-summary", lambda: calls.append("summary"))
    with keeping():
        next_run = publish("apply-prod", lambda: calls.append("next run"))

    assert again is not None and "(apply-prod-summary) were not published" in again, "not tried again"
    assert first == "the run's artifacts (apply-prod) were not published: the Prefect API failed " \
                    "(ConnectError: connection refused)"
    assert next_run is None and calls == ["gone", "next run"]
