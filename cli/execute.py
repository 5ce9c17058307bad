"""The execute path of the CLI: runs the Prefect flow (the only place Prefect is imported from the CLI).

With PREFECT_API_URL set, the run is recorded on that server (UI, artifacts, concurrency); without it,
Prefect starts a temporary local server for the run, which costs about ten seconds.
"""

import os

from cli.args import Options
from core.report import RunReport
from core.vocabulary import Outcome

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

LOG_DRAIN_S = 30.0
"""How long the CLI waits, before it exits, for the run's last log lines (the audit warnings among them) to reach
the Prefect server; Prefect's own drain at exit gives up after 5 s, which a busy machine outlasts."""


def execute(options: Options) -> RunReport:
    from flows.apply import infra_apply
    from flows.rollback import infra_rollback

    common = {"plan": str(options.plan), "pr": options.pr, "execute": True,
              "require_approval": options.require_approval}
    if options.flow == "apply":
        state = infra_apply(**common, atomic=options.atomic, return_state=True)
    else:
        from_record = str(options.from_record.resolve()) if options.from_record is not None else None
        state = infra_rollback(**common, force=options.force, from_record=from_record,
                               seed_fallback=options.seed_fallback, return_state=True)
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=LOG_DRAIN_S)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RunReport):
        return outcome
    return RunReport((f"error: {outcome}",), None, Outcome.FAILED)
