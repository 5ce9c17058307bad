"""The CLI's flow runs (`run_flow`, for infra-apply and infra-rollback --execute, infra-plan --pr and
infra-scale --execute): the only place the CLI imports Prefect.

With PREFECT_API_URL set, the run is recorded on that server (UI, artifacts, concurrency); without it,
Prefect starts a temporary local server for the run, which costs about ten seconds.

When that server goes away mid-run, the run does not wait for it: every Prefect API call is bounded
(PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES, defaults below), the tasks go on without Prefect's
tracking (their state is kept in this process), the cluster work finishes, the lock is released, the record is
written in the cluster, and the outcome is printed with a note saying what the Prefect UI is missing.

The CLI's own flow runs send no heartbeats unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY (in the environment or the
Prefect profile) asks for them. Heartbeats let
an automation mark a run whose machine died as crashed (Prefect's zombie detection, for deployment runs on a
worker, which keep them); here the person at the terminal sees the crash and the cluster record and the Lease
carry the run's state. Prefect 3.9's heartbeat thread sleeps in whole seconds and is joined when the flow ends, so
it held every CLI run for a further second after its last step.
"""

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from cli.args import Options
from core.report import RunReport, with_lines
from core.vocabulary import Outcome
from integrations.process import leave_at_once, long_lived_imports

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Prefect's defaults (60 s per request, 5 retries backing off 2, 4, ... 32 s) make each call to a server that
# is gone last about a minute; these bound it to a few seconds. The environment can still override them.
os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "10")
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "2")

LOG_DRAIN_S = 30.0
"""How long the CLI waits, before it exits, for the run's last log lines (the audit warnings among them) to reach
the Prefect server; Prefect's own drain at exit gives up after 5 s, which a busy machine outlasts."""
HEALTH_TIMEOUT_S = 3.0
"""How long the check that the Prefect server still answers may take, after the run."""


class OptionalLimits(logging.Filter):
    """The target's Prefect concurrency limit is optional (tasks.lock: the Lease is the lock; the limit, where
    deployments/work_pools.py created it, only makes runs pausable in the UI). Against a server without it,
    Prefect warns on every run that it does not exist; a CLI run leaves that out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Concurrency limits ") and message.endswith("skipping acquisition."))


def execute(options: Options) -> RunReport:
    return run_flow(lambda: flow_call(options))


def run_flow(flow_call: Callable[[], Callable[..., Any]],
             raised: Callable[[BaseException], RunReport | None] = lambda error: None) -> RunReport:
    """Run the flow `flow_call` imports (with its parameters) as every CLI does: Prefect imported as long-lived,
    no heartbeats, the run's own `Kept` made before it starts. Its report comes back even when the Prefect server
    went away (then with a note, and the process leaves without waiting for Prefect's queues); a run that ended
    in an error after its report says so in a note. One that raised before any report is `raised(error)`'s
    report (which may raise it again), else `error: <what ended it>`."""
    with long_lived_imports():
        from prefect.logging.configuration import ensure_logging_setup

        from tasks.kept import keeping

        run = flow_call()
    ensure_logging_setup()  # Prefect's configuration first: it would replace what is set before it
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.concurrency"):
        logging.getLogger(name).addFilter(OptionalLimits())
    outcome: object
    with keeping() as kept:
        try:
            with without_heartbeats():
                state = cast("State[Any]", run(return_state=True))
            outcome = state.result(raise_on_failure=False)
        except Exception as error:  # Prefect's engine could not record the run's state: its server went away
            outcome = error
    lost = kept.prefect_error or prefect_unreachable()
    if lost is None:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=LOG_DRAIN_S)
    if isinstance(outcome, BaseException) and kept.report is None:
        outcome = raised(outcome) or outcome
    report = outcome if isinstance(outcome, RunReport) else kept.report
    notes = [] if report is outcome or lost is not None else [
        f"note: the flow run ended in an error after its report ({outcome})"]
    if report is None:
        return RunReport((f"error: {outcome}",), None, Outcome.FAILED)
    if lost is not None:
        notes.append(f"note: the Prefect server stopped answering ({lost}): its UI may lack this run's final "
                     "state, logs and artifacts; the outcome here and the record in the cluster are complete")
        leave_without_waiting_for_prefect()
    return with_lines(report, notes)


def flow_call(options: Options) -> Callable[..., Any]:
    """The flow the options ask for, with its parameters (importing that flow only)."""
    common = {"plan": str(options.plan), "pr": options.pr, "execute": True,
              "require_approval": options.require_approval}
    if options.flow == "apply":
        from flows.apply import infra_apply

        return partial(infra_apply, **common, atomic=options.atomic, require_plan=options.require_plan)
    from flows.rollback import infra_rollback

    from_record = str(options.from_record.resolve()) if options.from_record is not None else None
    return partial(infra_rollback, **common, force=options.force, from_record=from_record,
                   seed_fallback=options.seed_fallback)


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """No flow-run heartbeats for the CLI's own run, unless their frequency is set, in the environment or the
    Prefect profile (module doc)."""
    from prefect.context import SettingsContext, get_settings_context

    context = get_settings_context()
    flows = context.settings.flows
    if "heartbeat_frequency" in flows.model_fields_set:
        yield
        return
    # The current settings with this one field changed: `temporary_settings` would read every settings source
    # (environment, profiles file) again to validate the copy, 20 ms of every run's start.
    quiet = flows.model_copy(update={"heartbeat_frequency": None})
    with SettingsContext(profile=context.profile, settings=context.settings.model_copy(update={"flows": quiet})):
        yield


def prefect_unreachable() -> str | None:
    """Why the Prefect server this run reports to no longer answers, or None (also without a server URL: then
    the server was a temporary one of this process)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return None


def leave_without_waiting_for_prefect() -> None:
    """At interpreter exit, Prefect's event and log services wait, without a bound, until each queued item has
    reached the server; against a server that is gone the events client spends about 7 s on every event. Once
    the outcome is printed, the process leaves with its exit code instead (integrations.process.leave_at_once): what is
    still queued could never be delivered."""
    leave_at_once()
