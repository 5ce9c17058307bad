"""Each flow run keeps its own report and Prefect outage (tasks.kept): nothing one run kept reaches the next."""

from core.report import failure
from tasks.kept import keep, keeping, kept


def test_a_run_keeps_its_report_only_for_itself() -> None:
    with keeping() as first:
        keep(failure("the cluster could not be reached"))
        first.prefect_error = "ConnectError: refused"
    with keeping() as second:
        assert (second.report, second.prefect_error) == (None, None), "the next run starts with nothing kept"
    assert first.report is not None and first.report.lines[-1] == "error: the cluster could not be reached"


def test_the_flow_keeps_into_what_its_caller_made() -> None:
    with keeping() as caller:
        with keeping() as run:  # the flow's own, inside run_flow's
            keep(failure("lost"))
        assert run is caller and caller.report is not None


def test_outside_a_run_nothing_is_kept() -> None:
    keep(failure("nobody waits for this"))

    assert kept().report is None
