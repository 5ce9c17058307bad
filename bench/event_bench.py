"""Benchmark the label-to-first-change time (issue 16, `--event-latency`): a signed `labeled` delivery to the
webhook bridge, through a Prefect server, its automation and a process worker, to the first mutating request
the sandbox API server logs.

Everything is real except the cluster and GitHub: `infra-webhook` as a process, a Prefect server (`prefect
server start` on PostgreSQL as production runs it, or `--database sqlite`), the work pools and limits of
`deployments/work_pools.py`, the deployments and triggers of prefect.yaml (`prefect --no-prompt deploy --all`),
`prefect worker start --type process` on pool infra-prod, the in-process sandbox API server and GitHub test
server, real kubectl.

Each run adds the label on the GitHub server (as the labeler did) and posts a newly signed delivery; runs
alternate execute-plan and rollback-plan, so every run changes the cluster (web 2 -> 4 -> 2 ...). Per run, in
ms from the POST:

- answered: the bridge's 200; created: the flow run's `created`; pending: the worker claimed it (its Pending
  state); spawned: the flow-run process started (its /proc start time, a child of the worker); running: the
  engine's Running state; gate: the end of `verify_label`; slot: the target's Prefect concurrency slot taken
  (its `prefect.concurrency-limit.acquired` event); lease: the first Lease request; change: the first mutating
  request on the plan's object.
- stall: slot - gate (the commit status in between takes ~30-100 ms).
- the flow-run process's CPU seconds to Running and to the change (sampled from /proc every 20 ms): the load
  stretches wall time, far less CPU time.
- before each worker's runs, what its polling costs idle: CPU of the worker and of the server and database.

    .venv/bin/python bench/event_bench.py [--runs 5] [--poll-seconds 1,0.5] [--compare-start] [--database sqlite]
    .venv/bin/python bench/execution_bench.py --event-latency [--runs 5] [--poll-seconds 0.5]

`--worker-log-level DEBUG --keep DIR` keeps the worker's log, where a flow-run process's client retries show
(`Received response with retryable status code 503`); with PREFECT_API_LOG_RETRYABLE_ERRORS=true in the
environment the server's log says why.

With several `--poll-seconds`, a worker is started for each value in turn (the same server, deployments and
PR), so the figures compare in one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployments.webhook import signature_for  # noqa: E402
from sandbox.harness import VENV_BIN, Prefect, Sandboxes, free_port, launch_prefect, wait_prefect  # noqa: E402
from tests.fixtures.prefect_server import Postgres  # noqa: E402

REPO = "acme/infra"
TARGET = "prod"
NAMESPACE = "shop"
WORKLOAD = "web"
PLAN_PATH = f"ops/plans/infra-scale/{TARGET}/plan.yaml"
PLAN_TEXT = f"""namespace: {NAMESPACE}
target: {TARGET}
actions:
  - type: scale_workload
    name: {WORKLOAD}
    replicas: 4
    reason: event latency bench
"""
PACKAGES = ("core", "integrations", "cli", "flows", "tasks", "deployments", "sandbox")
SECRET = "event-bench-webhook-secret"
LABELER = "walt"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
FLOWS = {"execute-plan": "infra-apply", "rollback-plan": "infra-rollback"}
PHASES = ("answered", "created", "pending", "spawned", "running", "gate", "slot", "lease", "change")


def _epoch(stamp: str | None) -> float | None:
    return dt.datetime.fromisoformat(stamp).timestamp() if stamp else None


def checkout_for(tmp: Path) -> Path:
    """A worker's checkout (INFRA_ORCHESTRATOR_DIR): the packages symlinked, prefect.yaml, and the plan."""
    checkout = tmp / "checkout"
    checkout.mkdir()
    for package in PACKAGES:
        (checkout / package).symlink_to(ROOT / package, target_is_directory=True)
    shutil.copy(ROOT / "prefect.yaml", checkout / "prefect.yaml")
    (checkout / PLAN_PATH).parent.mkdir(parents=True)
    (checkout / PLAN_PATH).write_text(PLAN_TEXT)
    return checkout


def run_checked(argv: list[str], env: dict[str, str], cwd: Path, what: str) -> None:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@dataclass
class Service:
    """A started process (the bridge, a worker) in its own process group, with its log."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Service:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return cls(proc, log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _boot_time() -> float:
    with open("/proc/stat") as stat:
        return float(next(line.split()[1] for line in stat if line.startswith("btime")))


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3, the state, first)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _started_at(pid: int, boot: float) -> tuple[int, float] | None:
    """(parent pid, start time as epoch seconds; 10 ms resolution) of a process, from /proc."""
    fields = _stat(pid)
    return None if fields is None else (int(fields[1]), boot + int(fields[19]) / TICK)


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far."""
    fields = _stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / TICK


def process_tree(root: int) -> list[int]:
    """A process and its live descendants (the server's workers, PostgreSQL's backends, a worker's flow runs)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def tree_cpu_s(root: int) -> float:
    """CPU seconds of a process and its live descendants."""
    return sum(_cpu_s(pid) or 0.0 for pid in process_tree(root))


class SpawnWatch:
    """Start times of the worker's child processes (the flow-run processes), sampled from /proc every 20 ms:
    they live for seconds, their start time in /proc is exact to a clock tick. Their CPU time is sampled too,
    a figure the machine's load does not inflate as it does wall time."""

    def __init__(self, worker_pid: int) -> None:
        self.worker_pid = worker_pid
        self.seen: dict[int, float] = {}
        self.cpu: dict[int, list[tuple[float, float]]] = {}
        self._done = threading.Event()
        self._boot = _boot_time()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            for entry in os.listdir("/proc"):
                if entry.isdigit() and int(entry) not in self.seen:
                    found = _started_at(int(entry), self._boot)
                    if found is not None and found[0] == self.worker_pid:
                        self.seen[int(entry)] = found[1]
                        self.cpu[int(entry)] = []
            now = time.time()
            for pid, samples in self.cpu.items():
                used = _cpu_s(pid)
                if used is not None:
                    samples.append((now, used))

    def first_after(self, moment: float) -> int | None:
        """The first flow-run process started after `moment`."""
        started = [(start, pid) for pid, start in self.seen.items() if start >= moment - 0.01]
        return min(started)[1] if started else None

    def cpu_at(self, since: float, moment: float | None) -> float | None:
        """CPU seconds used by `moment` (the last sample before it) by the processes started from `since` on
        (Prefect's default start has two: the workspace resolver, then the engine)."""
        if moment is None:
            return None
        return sum(max((used for at, used in self.cpu[pid] if at <= moment), default=0.0)
                   for pid, start in self.seen.items() if since - 0.01 <= start <= moment)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


@dataclass
class Stack:
    prefect: Prefect
    sandboxes: Sandboxes
    checkout: Path
    tmp: Path
    bridge_url: str = ""
    services: list[Service] = field(default_factory=list)
    pr: int = 0

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.prefect.api_url + path, json=body, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def client_env(self) -> dict[str, str]:
        return {**self.sandboxes.env(self.prefect), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "INFRA_ORCHESTRATOR_DIR": str(self.checkout), "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"}

    def deploy(self, engine_command: bool = True) -> None:
        """Pools, limits and deployments from prefect.yaml; without `engine_command`, with its work pools'
        `command` job variable removed (Prefect's default start: the pull step in a process of its own)."""
        config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
        if not engine_command:
            for deployment in config["deployments"]:
                deployment["work_pool"] = {"name": deployment["work_pool"]["name"]}
        (self.checkout / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        env = self.client_env()
        run_checked([str(VENV_BIN / "python"), "-m", "deployments.work_pools", "--prefect-yaml",
                     str(self.checkout / "prefect.yaml")], env, self.checkout, "deployments.work_pools")
        run_checked([str(VENV_BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, self.checkout,
                    "prefect deploy --all")

    def start_bridge(self) -> None:
        port = free_port()
        env = {**self.client_env(), "GITHUB_WEBHOOK_SECRET": SECRET, "INFRA_REPOSITORIES": REPO,
               "INFRA_WEBHOOK_STATE": str(self.tmp / "deliveries.sqlite3")}  # GitHub too: it lists the PR's files
        bridge = Service.start([str(VENV_BIN / "infra-webhook"), "--port", str(port)], env, self.checkout,
                               self.tmp / "bridge.log")
        self.services.append(bridge)
        self.bridge_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if httpx.get(self.bridge_url + "/healthz", timeout=2).status_code == 200:
                    return
            if bridge.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"the bridge did not start:\n{bridge.log.read_text()[-3000:]}")

    @contextmanager
    def worker(self, poll_s: float, log_level: str) -> Iterator[Service]:
        env = {**self.client_env(), "PREFECT_WORKER_QUERY_SECONDS": f"{poll_s:g}", "PREFECT_LOGGING_LEVEL": log_level}
        worker = Service.start([str(VENV_BIN / "prefect"), "worker", "start", "--pool", f"infra-{TARGET}",
                                "--type", "process", "--name", f"bench-{poll_s:g}"], env, self.checkout,
                               self.tmp / f"worker-{poll_s:g}.log")
        try:
            deadline = time.monotonic() + 120
            while not self.api("POST", f"/work_pools/infra-{TARGET}/workers/filter", {}) or not any(
                    w["name"] == f"bench-{poll_s:g}" and w.get("status") == "ONLINE"
                    for w in self.api("POST", f"/work_pools/infra-{TARGET}/workers/filter", {})):
                if worker.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the worker did not come online:\n{worker.log.read_text()[-3000:]}")
                time.sleep(0.3)
            yield worker
        finally:
            worker.stop()

    def seed(self) -> None:
        github = self.sandboxes.github
        for login in ("alice", LABELER):
            github.add_user(login)
        github.create_repo(REPO, files={"README.md": "# infra\n"})
        github.add_collaborator(REPO, "alice", "admin")
        github.add_collaborator(REPO, LABELER, "write")
        self.pr = int(github.open_pr(REPO, head=f"infra-scale/{TARGET}", author="alice",
                                     title=f"infra-scale: {TARGET}", files={PLAN_PATH: PLAN_TEXT}))
        kube = self.sandboxes.kube
        kube.create_namespace(NAMESPACE)
        kube.create_deployment(NAMESPACE, WORKLOAD, replicas=2)

    def delivery(self, label: str, pr: int | None = None, target: str = TARGET) -> tuple[bytes, dict[str, str]]:
        """A `labeled` delivery as GitHub sends it: a body that differs per delivery (its timestamps), signed;
        for the bench's PR on prod unless `pr` (on branch infra-scale/`target`) is given."""
        number = self.pr if pr is None else pr
        head_sha = self.sandboxes.github.head_sha(REPO, number)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        body = json.dumps({
            "action": "labeled", "number": number,
            "label": {"name": label, "color": "ededed", "default": False},
            "pull_request": {"number": number, "state": "open", "updated_at": now,
                             "head": {"ref": f"infra-scale/{target}", "sha": head_sha,
                                      "repo": {"full_name": REPO, "fork": False}},
                             "base": {"ref": "main", "repo": {"full_name": REPO}}},
            "repository": {"full_name": REPO, "name": REPO.split("/")[1], "owner": {"login": REPO.split("/")[0]}},
            "sender": {"login": LABELER, "type": "User"},
        }).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                   "X-GitHub-Delivery": str(uuid.uuid4()), "User-Agent": "GitHub-Hookshot/bench",
                   "X-Hub-Signature-256": signature_for(SECRET.encode(), body)}
        return body, headers

    def flow_run_after(self, flow: str, moment: float, timeout_s: float = 120) -> dict[str, Any]:
        """The first flow run of `flow`/prod created after `moment`, once it is terminal."""
        deployment = self.api("GET", f"/deployments/name/{flow}/{TARGET}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = self.api("POST", "/flow_runs/filter", {
                "deployments": {"id": {"any_": [deployment["id"]]}}, "sort": "EXPECTED_START_TIME_DESC",
                "limit": 5})
            fresh = [run for run in runs if (_epoch(run["created"]) or 0) >= moment - 0.5]
            if fresh and fresh[-1].get("state_type") in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return dict(fresh[-1])
            time.sleep(0.25)
        raise SystemExit(f"no finished {flow} run within {timeout_s:g} s")

    def stop(self) -> None:
        for service in self.services:
            service.stop()


@dataclass
class Measured:
    label: str
    state: str
    at: dict[str, float | None]
    tasks: list[str]
    logs: list[str]
    cpu: dict[str, float | None]
    """CPU seconds the flow-run process had used by its Running state and by the change."""

    def ms(self, phase: str) -> float | None:
        value = self.at.get(phase)
        return None if value is None else value * 1000


def measure(stack: Stack, label: str, spawns: SpawnWatch) -> Measured:
    kube = stack.sandboxes.kube
    seq = max((r["seq"] for r in kube.requests()), default=0)
    stack.sandboxes.github.add_label(REPO, stack.pr, label, LABELER)
    body, headers = stack.delivery(label)
    posted = time.time()
    answer = httpx.post(stack.bridge_url + "/", content=body, headers=headers, timeout=10)
    answered = time.time()
    if answer.status_code != 200:
        raise SystemExit(f"the bridge answered {answer.status_code}: {answer.text}")
    run = stack.flow_run_after(FLOWS[label], posted)
    states = stack.api("GET", f"/flow_run_states/?flow_run_id={run['id']}")
    first_state: dict[str, float | None] = {}
    for state in sorted(states, key=lambda s: s["timestamp"]):
        first_state.setdefault(state["type"], _epoch(state["timestamp"]))
    task_runs = stack.api("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}},
                                                        "sort": "EXPECTED_START_TIME_ASC", "limit": 200})
    logs = stack.api("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "TIMESTAMP_ASC",
                                              "limit": 50})
    requests = [r for r in kube.requests(seq) if r["time"] >= posted]
    changes = [r for r in requests if r["method"] in MUTATING and f"/deployments/{WORKLOAD}" in r["path"]]
    leases = [r for r in requests if "/leases" in r["path"]]
    gates = [t for t in task_runs if t["name"].startswith("verify_label") and t.get("end_time")]
    acquired = stack.api("POST", "/events/filter", {"filter": {
        "event": {"prefix": ["prefect.concurrency-limit.acquired"]},
        "occurred": {"since": dt.datetime.fromtimestamp(posted, dt.UTC).isoformat()}}, "limit": 20})["events"]

    def since(moment: float | None) -> float | None:
        return None if moment is None else moment - posted

    change = changes[0]["time"] if changes else None
    outside = [f"{t['name']} {since(_epoch(t['start_time'])) or 0:.2f}+"
               f"{(_epoch(t['end_time']) or 0) - (_epoch(t['start_time']) or 0):.2f}"
               for t in task_runs if t.get("start_time") and change and (_epoch(t["start_time"]) or 0) < change]
    process = spawns.first_after(first_state.get("PENDING") or posted)
    picked = first_state.get("PENDING") or posted
    cpu = {phase: spawns.cpu_at(picked, moment)
           for phase, moment in (("running", first_state.get("RUNNING")), ("change", change))}
    at = {
        "answered": answered - posted,
        "created": since(_epoch(run["created"])),
        "pending": since(first_state.get("PENDING")),
        "spawned": since(spawns.seen[process]) if process is not None else None,
        "running": since(first_state.get("RUNNING")),
        "gate": since(max((_epoch(t["end_time"]) or 0 for t in gates), default=None)),
        "slot": since(min((_epoch(event["occurred"]) or 0 for event in acquired), default=None)),
        "lease": since(leases[0]["time"]) if leases else None,
        "change": since(change),
    }
    lines = [f"{(_epoch(entry['timestamp']) or 0) - posted:6.2f} {entry['message'][:100]}" for entry in logs
             if change and (_epoch(entry["timestamp"]) or 0) <= change]
    return Measured(label, str(run.get("state_type")), at, outside, lines, cpu)


def _cell(value: float | None) -> str:
    return f"{value:>8.0f}" if value is not None else f"{'?':>8}"


def report(poll_s: float, runs: list[Measured], load: tuple[float, float, float]) -> None:
    print(f"\n== PREFECT_WORKER_QUERY_SECONDS={poll_s:g} (load average before {' '.join(f'{x:.2f}' for x in load)},"
          f" after {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    print(f"{'run':<18}" + "".join(f"{phase:>12}" for phase in PHASES) + f"{'stall':>9}  state")
    for index, run in enumerate(runs, 1):
        gate, slot = run.ms("gate"), run.ms("slot")
        stall = slot - gate if gate is not None and slot is not None else None
        print(f"{index} {run.label:<16}" + "".join(f"{_cell(run.ms(p)):>12}" for p in PHASES)
              + f"{_cell(stall):>9}  {run.state}")
    medians = {}
    for phase in PHASES:
        values = [v for v in (run.ms(phase) for run in runs) if v is not None]
        medians[phase] = statistics.median(values) if values else None
    print(f"{'median ms':<18}" + "".join(f"{_cell(medians[p]):>12}" for p in PHASES))
    steps = list(itertools.pairwise(PHASES))
    deltas = []
    for a, b in steps:
        values = [run.ms(b) - run.ms(a) for run in runs  # type: ignore[operator]
                  if run.ms(a) is not None and run.ms(b) is not None]
        deltas.append(f"{a}->{b} {statistics.median(values):.0f}" if values else f"{a}->{b} ?")
    print("median per phase (ms): " + ", ".join(deltas))
    for phase in ("running", "change"):
        used = [value * 1000 for value in (run.cpu[phase] for run in runs) if value is not None]
        print(f"flow-run process CPU from spawn to {phase}: median {statistics.median(used):.0f} ms"
              if used else f"flow-run process CPU to {phase}: ?")
    change = medians["change"]
    print(f"label to first change: median {change / 1000 if change else float('nan'):.2f} s "
          f"(target <= 3 s){'' if change and change <= 3000 else ' NOT MET'}")
    print("task runs before the change (s from the POST, start+duration), last run: " + ", ".join(runs[-1].tasks))
    if runs[-1].logs:
        print("the flow run's logs before the change (s from the POST), last run:\n  " + "\n  ".join(runs[-1].logs))


def idle_cost(worker: int, servers: list[int], seconds: float) -> str:
    """What the worker's polling costs with nothing to run: CPU of the worker and of the server side (the
    Prefect server and its database) per second of wall time."""
    before = tree_cpu_s(worker), sum(tree_cpu_s(pid) for pid in servers)
    time.sleep(seconds)
    after = tree_cpu_s(worker), sum(tree_cpu_s(pid) for pid in servers)
    return (f"idle for {seconds:g} s: worker {1000 * (after[0] - before[0]) / seconds:.0f} ms CPU/s, Prefect server"
            f" + database {1000 * (after[1] - before[1]) / seconds:.0f} ms CPU/s")


DATABASES = ("postgresql", "sqlite")
DATABASE_HELP = ("the Prefect server's database: PostgreSQL as production runs it, or SQLite, whose server "
                 "answers a concurrency-slot write that meets another write with a 503 its client retries ~2 s later")


@contextmanager
def prefect_database(kind: str) -> Iterator[Postgres | None]:
    """For `postgresql`, a PostgreSQL server of its own that `launch_prefect`'s server then uses (through
    PREFECT_SERVER_DATABASE_CONNECTION_URL); for `sqlite`, nothing (Prefect's default)."""
    if kind != "postgresql":
        yield None
        return
    database = Postgres(root=Path(tempfile.mkdtemp(prefix="bench-pg-")), port=free_port())
    database.root.chmod(0o755)  # PostgreSQL runs as its own user
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database.start().url
    try:
        yield database
    finally:
        os.environ.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
        database.stop()
        shutil.rmtree(database.root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll-seconds", default="0.5",
                        help="worker poll intervals to compare, e.g. 1,0.5 (default: production's, docs/production.md)")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between a run's end and the next label")
    parser.add_argument("--compare-start", action="store_true",
                        help="first measure with Prefect's default flow-run start (no `command` job variable)")
    parser.add_argument("--database", choices=DATABASES, default="postgresql", help=DATABASE_HELP)
    parser.add_argument("--worker-log-level", default="INFO",
                        help="DEBUG shows the flow-run processes' client retries (503s) in the worker's log")
    parser.add_argument("--keep", type=Path, help="copy the logs (worker, bridge, Prefect server) here at the end")
    parser.add_argument("--idle-seconds", type=float, default=10, help="how long the idle poll cost is measured")
    args = parser.parse_args(argv)
    polls = [float(value) for value in args.poll_seconds.split(",") if value]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())};"
          f" Prefect server on {args.database}")
    with tempfile.TemporaryDirectory(prefix="event-bench-") as tmp_name, \
            prefect_database(args.database) as database:
        tmp = Path(tmp_name)
        prefect = launch_prefect(tmp)
        sandboxes = Sandboxes(tmp)
        stack = Stack(prefect, sandboxes, checkout_for(tmp), tmp)
        try:
            sandboxes.start()
            wait_prefect(prefect)
            stack.seed()
            stack.start_bridge()
            labels = list(FLOWS)
            done = 0
            for engine_command in ([False, True] if args.compare_start else [True]):
                stack.deploy(engine_command)
                start = "prefect.yaml's command (one process)" if engine_command else \
                    "Prefect's default (workspace resolver process, then the engine)"
                for poll_s in polls:
                    print(f"\nflow-run start: {start}")
                    with stack.worker(poll_s, args.worker_log_level) as worker:
                        servers = [proc.pid for proc in (prefect.proc, database and database.proc) if proc]
                        print(idle_cost(worker.proc.pid, servers, args.idle_seconds))
                        spawns = SpawnWatch(worker.proc.pid)
                        load = os.getloadavg()
                        runs = []
                        try:
                            for _ in range(args.runs):
                                runs.append(measure(stack, labels[done % 2], spawns))
                                done += 1
                                time.sleep(args.pause)
                        finally:
                            spawns.stop()
                        report(poll_s, runs, load)
        finally:
            stack.stop()
            if args.keep:
                shutil.copytree(tmp, args.keep, symlinks=True, dirs_exist_ok=True)
            prefect.stop()
            sandboxes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
