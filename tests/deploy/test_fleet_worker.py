"""The event-woken worker (`deployments/event_worker.py`, `prefect worker start --type event-process`) against the
real Prefect server on PostgreSQL, under faults: none loses or doubles a run.

Every worker here polls only every 300 s (`PREFECT_WORKER_QUERY_SECONDS`), so a run started within the tests'
timeouts was started by its event (or by the poll at the worker's start). Each run of the probe flow appends
its flow-run id to a marker file: one line per run is "started once"; the run's state history shows one claim.
The deployment's command is prefect.yaml's (`python -m deployments.engine`): once the worker's fork server is
ready, runs start as its children (deployments/fork_server.py), before that as processes of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployments.event_worker import WORKER_TYPE, reconnect_delay, scheduled_run_in_pool, scheduled_runs_filter
from tests.fixtures.prefect_server import PREFECT, VENV_BIN, PrefectServer, free_port, stop_processes

SAFETY_POLL_S = "300"
PROBE = '''
import os
import time
from prefect import flow
from prefect.runtime import flow_run


@flow
def fleet_probe(marker: str, seconds: float = 0.0, exit_code: int | None = None, kill: int | None = None) -> None:
    with open(marker, "a") as out:
        out.write(f"{flow_run.id}\\n")
    with open(marker + ".processes", "a") as out:
        out.write(f"{flow_run.id} {os.getpid()} {os.getppid()}\\n")
    try:
        time.sleep(seconds)
    except BaseException as stopped:  # Prefect's SIGTERM handler raises TerminationSignal
        with open(marker + ".signals", "a") as out:
            out.write(f"{flow_run.id} {type(stopped).__name__} {getattr(stopped, 'signal', '-')}\\n")
        raise
    if exit_code is not None:
        os._exit(exit_code)  # past Prefect: only the exit code tells the worker
    if kill is not None:
        os.kill(os.getpid(), kill)
'''


class Proxy:
    """A TCP proxy to the Prefect server whose open connections can be cut (the worker's websocket with them)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> int:
        """Close every open connection; returns how many there were."""

        async def close_all() -> int:
            writers = list(self._writers)
            for writer in writers:
                writer.transport.abort()
            return len(writers)

        return asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@dataclass
class Fleet:
    server: PrefectServer
    pool: str
    deployment_id: str
    marker: Path
    workers: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def start_worker(self, api_url: str | None = None, fast_start: bool = True) -> int:
        log = self.marker.parent / f"worker-{len(self.workers)}.log"
        env = {**self.server.env, "PREFECT_WORKER_QUERY_SECONDS": SAFETY_POLL_S, "PREFECT_LOGGING_LEVEL": "DEBUG",
               "INFRA_FAST_START": "1" if fast_start else "0"}
        if api_url:
            env["PREFECT_API_URL"] = api_url
        self.workers.append(subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", self.pool, "--type", WORKER_TYPE, "--name",
             f"{self.pool}-{len(self.workers)}"],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
        self.logs.append(log)
        return len(self.workers) - 1

    def log(self, index: int = -1) -> str:
        return self.logs[index].read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1, index: int = -1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.log(index).count(text) < count:
            if time.monotonic() > deadline or self.workers[index].poll() is not None:
                raise AssertionError(f"worker log never said {text!r} {count} times:\n{self.log(index)[-4000:]}")
            time.sleep(0.2)

    def create_run(self, seconds: float = 0.0, **parameters: int) -> str:
        run = self.server.api("POST", f"/deployments/{self.deployment_id}/create_flow_run",
                              {"parameters": {"marker": str(self.marker), "seconds": seconds, **parameters}})
        return str(run["id"])

    def fork_server_pid(self, index: int = -1) -> int:
        """Once the worker's fork server is ready (its runs start as its children from then on)."""
        self.wait_log("fork server: ready on", index=index)
        found = re.search(r"fork server: ready on \S+ \(pid (\d+)\)", self.log(index))
        assert found, self.log(index)[-2000:]
        return int(found[1])

    def process(self, run_id: str, timeout: float = 60) -> tuple[int, int]:
        """The probe's (pid, parent pid) in the run's process."""
        path = self.marker.with_name(self.marker.name + ".processes")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in path.read_text().splitlines() if path.exists() else []:
                found_id, pid, ppid = line.split()
                if found_id == run_id:
                    return int(pid), int(ppid)
            time.sleep(0.2)
        raise AssertionError(f"flow run {run_id} never ran its probe")

    def wait_state(self, run_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.server.api("GET", f"/flow_runs/{run_id}")
            if run.get("state_type") in states:
                return run
            time.sleep(0.2)
        logs = "\n".join(path.read_text(errors="replace")[-3000:] for path in self.logs)
        raise AssertionError(f"flow run {run_id} not in {states} after {timeout} s; worker logs:\n{logs}")

    def started(self) -> list[str]:
        return self.marker.read_text().split() if self.marker.exists() else []

    def claims(self, run_id: str) -> list[str]:
        """The run's Pending-type states in order: a worker's claim (Pending), then its Submitting."""
        states = sorted(self.server.api("GET", f"/flow_run_states/?flow_run_id={run_id}"), key=lambda s: s["timestamp"])
        return [state["name"] for state in states if state["type"] == "PENDING"]

    def assert_ran_once(self, *run_ids: str) -> None:
        for run_id in run_ids:
            assert self.wait_state(run_id, {"COMPLETED", "FAILED", "CRASHED"})["state_type"] == "COMPLETED"
            assert self.started().count(run_id) == 1, self.started()
            assert self.claims(run_id) == ["Pending", "Submitting"]


@pytest.fixture
def fleet(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[Fleet]:
    """A process work pool of its own, a deployment of the probe flow in it, and workers started on demand."""
    from prefect.workers.process import ProcessWorker

    pool = f"fleet-{uuid.uuid4().hex[:8]}"
    prefect_server.api("POST", "/work_pools/", {
        "name": pool, "type": "process", "base_job_template": ProcessWorker.get_default_base_job_template()})
    (tmp_path / "fleet_probe.py").write_text(PROBE)
    flow = prefect_server.api("POST", "/flows/", {"name": "fleet-probe"})
    deployment = prefect_server.api("POST", "/deployments/", {
        "name": pool, "flow_id": flow["id"], "work_pool_name": pool, "entrypoint": "fleet_probe.py:fleet_probe",
        "enforce_parameter_schema": False,
        "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path)}}],
        # prefect.yaml's command (the fork server's runs), talking to the server directly
        "job_variables": {"command": f"{VENV_BIN / 'python'} -m deployments.engine",
                          "env": {"PREFECT_API_URL": prefect_server.api_url}},
    })  # fmt: skip
    fleet = Fleet(prefect_server, pool, deployment["id"], tmp_path / "started.txt", [], [])
    try:
        yield fleet
    finally:
        stop_processes(fleet.workers, 20)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


LISTENING = "Listening for flow runs scheduled in work pool"


@pytest.mark.timeout(180)
def test_a_run_created_while_idle_starts_on_its_event(fleet: Fleet) -> None:
    fleet.start_worker()
    fleet.wait_log(LISTENING)
    time.sleep(1)  # past the poll at start
    run_id = fleet.create_run()
    fleet.wait_state(run_id, {"PENDING", "RUNNING", "COMPLETED"}, timeout=30)  # the safety poll is 300 s away
    fleet.assert_ran_once(run_id)


@pytest.mark.timeout(180)
def test_runs_scheduled_before_the_worker_starts_are_found_by_its_first_poll(fleet: Fleet) -> None:
    run_ids = [fleet.create_run(), fleet.create_run()]
    fleet.start_worker()
    for run_id in run_ids:
        fleet.wait_state(run_id, {"PENDING", "RUNNING", "COMPLETED"}, timeout=60)
    fleet.assert_ran_once(*run_ids)


def scheduled_event(run_id: str, pool_id: str) -> dict[str, Any]:
    """A copy of the server's state event for a run entering Scheduled (a new event id, as a redelivery has)."""
    return {
        "id": str(uuid.uuid4()), "occurred": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "event": "prefect.flow-run.Scheduled",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.state-type": "SCHEDULED",
                     "prefect.state-name": "Scheduled"},
        "related": [{"prefect.resource.id": f"prefect.work-pool.{pool_id}", "prefect.resource.role": "work-pool"}],
        "payload": {},
    }  # fmt: skip


@pytest.mark.timeout(180)
def test_more_events_for_one_run_start_it_once(fleet: Fleet) -> None:
    fleet.start_worker()
    fleet.wait_log(LISTENING)
    pool_id = fleet.server.api("GET", f"/work_pools/{fleet.pool}")["id"]
    run_id = fleet.create_run(seconds=3)
    fleet.server.api("POST", "/events", [scheduled_event(run_id, pool_id) for _ in range(3)])
    fleet.wait_state(run_id, {"RUNNING", "COMPLETED"})
    fleet.server.api("POST", "/events", [scheduled_event(run_id, pool_id) for _ in range(3)])  # while it runs
    fleet.wait_log(f"Event prefect.flow-run.Scheduled for flow run {run_id}", count=5)
    fleet.assert_ran_once(run_id)


@pytest.mark.timeout(240)
def test_the_worker_reconnects_after_the_server_restarts(fleet: Fleet) -> None:
    fleet.start_worker()
    fleet.wait_log(LISTENING)
    done = fleet.create_run()
    fleet.assert_ran_once(done)
    fleet.server.stop()
    fleet.server.start()
    fleet.wait_log("Event stream lost")
    fleet.wait_log("(reconnected after", timeout=90)
    run_id = fleet.create_run()
    fleet.wait_state(run_id, {"PENDING", "RUNNING", "COMPLETED"}, timeout=30)
    fleet.assert_ran_once(done, run_id)


@pytest.mark.timeout(180)
def test_a_dropped_event_stream_mid_run_loses_and_doubles_nothing(fleet: Fleet) -> None:
    proxy = Proxy(fleet.server.port)
    try:
        fleet.start_worker(api_url=f"http://127.0.0.1:{proxy.port}/api")
        fleet.wait_log(LISTENING)
        running = fleet.create_run(seconds=4)
        fleet.wait_state(running, {"RUNNING"})
        assert proxy.cut() > 0
        fleet.wait_log("Event stream lost")
        fleet.wait_log(LISTENING, count=2)
        after = fleet.create_run()
        fleet.wait_state(after, {"PENDING", "RUNNING", "COMPLETED"}, timeout=30)
        fleet.assert_ran_once(running, after)
    finally:
        proxy.stop()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("fast_start", [True, False])
def test_a_run_is_cancelled_through_the_process_the_worker_knows(fleet: Fleet, fast_start: bool) -> None:
    fleet.start_worker(fast_start=fast_start)
    fork_server = fleet.fork_server_pid() if fast_start else None
    run_id = fleet.create_run(seconds=120)
    run = fleet.wait_state(run_id, {"RUNNING"})
    pid, parent = fleet.process(run_id)
    handed_over = int(run["infrastructure_pid"].split(":")[-1])
    if fast_start:
        assert parent == fork_server  # started fast: a child of the fork server, not a process importing Prefect
        assert handed_over not in (pid, fork_server)  # the worker's own child, which handed the run over
    else:
        assert handed_over == pid  # INFRA_FAST_START=0: the worker's own child runs the engine, as before
        assert "fork server" not in fleet.log()

    fleet.server.api("POST", f"/flow_runs/{run_id}/set_state",
                     {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True})  # `flow-run cancel`
    assert fleet.wait_state(run_id, {"CANCELLED", "COMPLETED", "FAILED", "CRASHED"})["state_type"] == "CANCELLED"
    signals = fleet.marker.with_name(fleet.marker.name + ".signals")
    assert signals.read_text().split() == [run_id, "TerminationSignal", "15"]  # SIGTERM reached the run's process
    deadline = time.monotonic() + 30
    while not (gone(pid) and gone(handed_over)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gone(pid) and gone(handed_over)


@pytest.mark.timeout(240)
def test_how_a_forked_run_process_ends_is_how_the_worker_sees_it_end(fleet: Fleet) -> None:
    fleet.start_worker()
    fork_server = fleet.fork_server_pid()
    exits, killed, completes = fleet.create_run(exit_code=3), fleet.create_run(kill=9), fleet.create_run()
    ended = {run_id: fleet.wait_state(run_id, {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
             for run_id in (exits, killed, completes)}  # fmt: skip
    assert all(fleet.process(run_id)[1] == fork_server for run_id in ended)
    assert ended[completes]["state_type"] == "COMPLETED"
    for run_id, status in ((exits, "3"), (killed, "-9")):
        assert ended[run_id]["state_type"] == "CRASHED"
        assert f"Process exited with status code: {status}." in ended[run_id]["state"]["message"]


def test_the_worker_type_is_registered_for_prefect_worker_start() -> None:
    from prefect.plugins import load_prefect_collections
    from prefect.workers.base import BaseWorker

    from deployments.event_worker import EventProcessWorker

    load_prefect_collections()
    assert BaseWorker.get_worker_class_from_type(WORKER_TYPE) is EventProcessWorker
    assert EventProcessWorker.type == "process"  # serves the process pools deployments/work_pools.py creates


POOL_ID, RUN_ID = uuid.uuid4(), uuid.uuid4()


def state_event(name: str = "Scheduled", state_type: str = "SCHEDULED", pool_id: uuid.UUID = POOL_ID,
                resource_id: str = f"prefect.flow-run.{RUN_ID}") -> Any:
    from prefect.events import Event

    return Event(event=f"prefect.flow-run.{name}",
                 resource={"prefect.resource.id": resource_id, "prefect.state-type": state_type},
                 related=[{"prefect.resource.id": f"prefect.work-pool.{pool_id}",
                           "prefect.resource.role": "work-pool"}])


@pytest.mark.parametrize(("event_args", "wanted"), [
    ({}, True),
    ({"name": "Late"}, True),
    ({"name": "AwaitingRetry"}, True),
    ({"name": "Pending", "state_type": "PENDING"}, False),  # already claimed: a poll would not return it
    ({"name": "Running", "state_type": "RUNNING"}, False),
    ({"pool_id": uuid.uuid4()}, False),  # another pool's run
    ({"resource_id": f"prefect.deployment.{RUN_ID}"}, False),
])  # fmt: skip
def test_the_server_and_the_worker_keep_scheduled_runs_of_the_pool_only(event_args: dict[str, Any],
                                                                         wanted: bool) -> None:
    from prefect.server.events.filters import EventFilter as ServerFilter
    from prefect.server.events.schemas.events import Event as ServerEvent

    event = state_event(**event_args)
    server_filter = ServerFilter.model_validate(scheduled_runs_filter(POOL_ID).model_dump(mode="json"))
    assert server_filter.includes(ServerEvent.model_validate(event.model_dump(mode="json"))) is wanted
    assert scheduled_run_in_pool(event, POOL_ID) == (RUN_ID if wanted else None)


def test_an_event_naming_no_flow_run_id_wakes_nothing() -> None:
    assert scheduled_run_in_pool(state_event(resource_id="prefect.flow-run.not-a-uuid"), POOL_ID) is None


def test_reconnects_back_off_from_half_a_second_to_ten_with_jitter() -> None:
    assert 0.4 <= reconnect_delay(1) <= 0.6
    assert 0.8 <= reconnect_delay(2) <= 1.2
    assert all(8 <= reconnect_delay(failures) <= 12 for failures in (6, 20, 1000))
    assert len({reconnect_delay(3) for _ in range(20)}) > 1


@pytest.fixture
def fork_server(tmp_path: Path) -> Iterator[str]:
    """A fork server as the worker starts it, with INFRA_PROBE=worker in its environment."""
    path = str(tmp_path / "socket")
    server = subprocess.Popen([str(VENV_BIN / "python"), "-m", "deployments.fork_server", path],
                              env={**os.environ, "INFRA_PROBE": "worker"}, stdin=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(path):
            assert server.poll() is None and time.monotonic() < deadline, "the fork server never became ready"
            time.sleep(0.1)
        yield path
    finally:
        assert server.stdin is not None
        server.stdin.close()  # the worker gone: it ends, having no runs
        assert server.wait(30) == 0
        assert not os.path.exists(path)


@pytest.mark.timeout(180)
def test_the_fork_server_leaves_a_run_whose_project_settings_differ_to_start_on_its_own(
        fork_server: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from deployments.fork_server import run_forked

    monkeypatch.setenv("INFRA_PROBE", "the run's own")  # read at import by some modules: the fork server's is stale
    assert run_forked(fork_server) is None
    assert "did not start this run (the run sets INFRA_PROBE otherwise than the worker)" in capfd.readouterr().err


def test_without_a_fork_server_the_run_starts_on_its_own(tmp_path: Path) -> None:
    from deployments.fork_server import run_forked

    assert run_forked(str(tmp_path / "no-such-socket")) is None


@pytest.mark.timeout(240)
def test_after_a_module_it_imported_changes_the_fork_server_refuses_runs_and_restarts_itself(
        fork_server: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from deployments import engine
    from deployments.fork_server import run_forked

    monkeypatch.setenv("INFRA_PROBE", "worker")
    module = Path(engine.__file__)
    before = module.stat()
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))  # a new checkout, as it looks
    try:
        assert run_forked(fork_server) is None
    finally:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "did not start this run (stale: a module it imported has changed since it started)" in capfd.readouterr().err
    deadline = time.monotonic() + 120
    while not os.path.exists(fork_server):  # re-executing: the socket is back once its imports are made again
        assert time.monotonic() < deadline, "the fork server did not come back"
        time.sleep(0.1)
    assert run_forked(fork_server) == 1  # serving again: Prefect's engine, forked, finds no flow run id here
