"""A process worker that wakes on events: `prefect worker start --pool infra-prod --type event-process`.

Prefect's process worker learns of a new flow run only when it next polls (`PREFECT_WORKER_QUERY_SECONDS`); a
fast poll costs the server and its database CPU for every idle worker. This worker keeps Prefect's own poll as a
slow safety net and also subscribes, on Prefect's event stream (`prefect.events.clients.get_events_subscriber`,
the websocket Prefect's own cancellation observer uses), to the state events of runs entering a SCHEDULED-type
state (Scheduled, Late, AwaitingRetry, ...) in its work pool, and polls at once when one arrives. Pending events
are not subscribed to: a Pending run is already claimed, and the poll only returns scheduled runs.

Submitting stays Prefect's: the poll is the worker's own `get_and_submit_flow_runs`, which claims each run by
proposing Pending to the server, so a run is started once however many wake-ups it causes. Polls from the
safety loop and from events are serialised, and events arriving during a poll cause one more poll, not one each.

Its runs start in milliseconds: the worker starts a fork server beside it (`deployments/fork_server.py`) that has
imported Prefect and the project once and forks each run's process, which the work pool's `command` (`python -m
deployments.engine`) hands the run to. INFRA_FAST_START=0 in the worker's environment turns it off: each run's
process then makes those imports itself.

The class keeps `type = "process"` (it serves the `process` pools `deployments/work_pools.py` creates, with their
job template, and reports itself as a process worker); it is registered for `--type` under its own dispatch key
through the `prefect.collections` entry point in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ResourceSpecification
from prefect.logging.loggers import get_worker_logger
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS
from prefect.workers.process import ProcessWorker

from core.conventions import Env
from deployments.fork_server import SOCKET_VARIABLE

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.events import Event

WORKER_TYPE = "event-process"
FLOW_RUN_PREFIX = "prefect.flow-run."
SCHEDULED = "SCHEDULED"
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0
FAST_START_VARIABLE = Env.FAST_START.value
FORK_SERVER_STOP_S = 30.0
FOLLOW_UP_S = (0.5, 1.5)
"""After an event, poll again at these delays until its run is submitted or no longer scheduled: the server
sends a state event from inside the transaction that writes the state, so the first poll can miss the run."""


def scheduled_runs_filter(work_pool_id: UUID) -> EventFilter:
    """What the server sends this worker: flow-run state events of a SCHEDULED-type state in its pool."""
    return EventFilter(
        event=EventNameFilter(prefix=[FLOW_RUN_PREFIX]),
        resource=EventResourceFilter(
            id_prefix=[FLOW_RUN_PREFIX], labels=ResourceSpecification({"prefect.state-type": SCHEDULED})
        ),
        any_resource=EventAnyResourceFilter(id=[f"prefect.work-pool.{work_pool_id}"]),
    )


def scheduled_run_in_pool(event: Event, work_pool_id: UUID) -> UUID | None:
    """The flow run an event announces as scheduled in the pool, or None (the server's filter checked the
    same; this is the client's own check of what it was sent)."""
    resource = event.resource
    if not resource.id.startswith(FLOW_RUN_PREFIX) or resource.get("prefect.state-type") != SCHEDULED:
        return None
    if not any(related.id == f"prefect.work-pool.{work_pool_id}" for related in event.related):
        return None
    try:
        return UUID(resource.id[len(FLOW_RUN_PREFIX) :])
    except ValueError:
        return None


def reconnect_delay(failures: int) -> float:
    """Seconds before reconnect attempt `failures` (1, 2, ...): doubling from 0.5 s up to 10 s, with +-20%
    jitter so a fleet of workers does not reconnect to a restarted server in one burst."""
    base = min(RECONNECT_MAX_S, RECONNECT_FIRST_S * 2 ** (failures - 1))
    return float(base * random.uniform(0.8, 1.2))


class EventProcessWorker(ProcessWorker):
    """Prefect's process worker, woken by its pool's scheduled-run events between slow safety polls."""

    _description = (
        "A process worker that polls at once when a flow run is scheduled in its work pool (Prefect's event "
        "stream), with Prefect's slow poll as a safety net."
    )

    @classmethod
    def __dispatch_key__(cls) -> str:
        return WORKER_TYPE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._poll_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._awaited: dict[UUID, int] = {}
        """Runs announced by an event and not yet seen submitted: run id -> follow-up polls done."""
        self._event_tasks: list[asyncio.Task[None]] = []
        self._fork_server: asyncio.subprocess.Process | None = None
        self._fork_server_dir: str | None = None

    async def setup(self) -> None:
        if os.environ.get(FAST_START_VARIABLE, "1") != "0":
            await self._start_fork_server()
        await super().setup()
        self._event_tasks += [asyncio.create_task(self._listen()), asyncio.create_task(self._poll_when_woken())]

    async def teardown(self, *exc_info: Any) -> None:
        for task in self._event_tasks:
            task.cancel()
        try:
            await asyncio.gather(*self._event_tasks, return_exceptions=True)
        finally:
            self._event_tasks = []
            try:
                await super().teardown(*exc_info)
            finally:
                await self._stop_fork_server()

    async def _start_fork_server(self) -> None:
        """Start the fork server; its runs find it through SOCKET_VARIABLE in the environment they inherit
        (until it is ready, which takes its imports' time, they start the slow way)."""
        self._fork_server_dir = tempfile.mkdtemp(prefix="infra-fork-server-")  # mode 0700: this user only
        path = os.path.join(self._fork_server_dir, "socket")
        self._fork_server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deployments.fork_server", path, stdin=asyncio.subprocess.PIPE)
        os.environ[SOCKET_VARIABLE] = path
        self._event_tasks.append(asyncio.create_task(self._watch_fork_server(self._fork_server)))

    async def _watch_fork_server(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        os.environ.pop(SOCKET_VARIABLE, None)
        get_worker_logger(self).warning(
            f"The fork server ended (exit code {code}); flow-run processes import Prefect themselves from now on")

    async def _stop_fork_server(self) -> None:
        """Closing its stdin stops it taking runs; it ends once its running ones have."""
        process, self._fork_server = self._fork_server, None
        if process is not None and process.stdin is not None:
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), FORK_SERVER_STOP_S)
            except TimeoutError:
                process.kill()
        if self._fork_server_dir is not None:
            shutil.rmtree(self._fork_server_dir, ignore_errors=True)
            self._fork_server_dir = None

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        async with self._poll_lock:
            return await super().get_and_submit_flow_runs()

    async def _pool_id(self) -> UUID:
        """The work pool's id, once the worker has synced with the server (setup may have found it down)."""
        while True:
            try:
                return self.work_pool.id
            except RuntimeError:
                await asyncio.sleep(1)

    async def _listen(self) -> None:
        failures = 0
        while True:
            pool_id = await self._pool_id()
            try:
                async with get_events_subscriber(
                    filter=scheduled_runs_filter(pool_id), reconnection_attempts=0
                ) as subscriber:
                    get_worker_logger(self).info(
                        f"Listening for flow runs scheduled in work pool {self.work_pool.name!r} on the event stream"
                        + (f" (reconnected after {failures} lost or failed connections)" if failures else "")
                    )
                    failures = 0
                    self._wake.set()  # what was scheduled while not listening
                    async for event in subscriber:
                        run_id = scheduled_run_in_pool(event, pool_id)
                        if run_id is not None:
                            get_worker_logger(self).debug(f"Event {event.event} for flow run {run_id}: polling now")
                            self._awaited.setdefault(run_id, 0)
                            self._wake.set()
                reason = "the server closed it"
            except asyncio.CancelledError:
                raise
            except Exception as error:
                reason = f"{type(error).__name__}: {error}"
            failures += 1
            delay = reconnect_delay(failures)
            get_worker_logger(self).warning(
                f"Event stream lost ({reason}); polling every {PREFECT_WORKER_QUERY_SECONDS.value():g} s meanwhile, "
                f"reconnecting in {delay:.1f} s (attempt {failures})"
            )
            await asyncio.sleep(delay)

    async def _poll_when_woken(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                submitted = {run.id for run in await self.get_and_submit_flow_runs()}
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the safety poll reports a server that stays away
                get_worker_logger(self).debug(f"Poll after an event failed: {type(error).__name__}: {error}")
                submitted = set()
            self._follow_up(submitted)

    def _follow_up(self, submitted: set[UUID]) -> None:
        """Poll again shortly for announced runs this poll did not submit (see FOLLOW_UP_S), then let them go:
        another worker of the pool may hold them, or they are scheduled later, for the safety poll."""
        for run_id, done in list(self._awaited.items()):
            if run_id in submitted or done >= len(FOLLOW_UP_S):
                del self._awaited[run_id]
                continue
            self._awaited[run_id] = done + 1
            asyncio.get_running_loop().call_later(FOLLOW_UP_S[done], self._wake.set)
