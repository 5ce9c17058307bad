"""Benchmark a fleet on one Prefect server (issue 29): N idle workers, one work pool each, against one Prefect
server on PostgreSQL, with the event-woken worker (`--type event-process`, Prefect's 10 s poll as its safety
net) and, in the same run, the same worker with its fork server off (`INFRA_FAST_START=0`: each flow-run
process imports Prefect itself, as before the fork server) and the baseline: Prefect's process worker polling
every 0.5 s.

For each kind of worker, workers are started up to each N in turn (default 10, 25, 50) and, once all are online
and settled, CPU is read from /proc over a fixed window (`--idle-seconds`):

- the Prefect server's and PostgreSQL's CPU (each process with its children), in ms per second of wall time per
  idle worker: over the window with N workers, less the same servers' CPU with no worker (measured first), / N;
- each worker's CPU (ms/s, the median and the largest) and memory (MiB, median and largest), its fork server
  included: resident (RSS) and proportional (PSS: pages shared with other processes, as a fork server's are
  with its children, counted in part).

With the first N's workers running, labels go through the whole path of bench/event_bench.py (the webhook
bridge, the automations of prefect.yaml's apply and rollback deployments, the worker, the flow run, the sandbox
API server): rounds of 1 label, then rounds of 10 labels on 10 different pools at once, alternating execute-plan
and rollback-plan so every run changes its cluster. Per label: label -> run created (the bridge and the
automation), label -> claim (the run's Pending: the worker's part), label -> Running (the flow-run process
started) and label -> first change (the first mutating request on the plan's workload), median and 95th
percentile. One round of labels on every pool comes first, uncounted: a pool's first run meets cold caches.

    .venv/bin/python bench/fleet_bench.py [--sizes 10,25,50] [--slow-start-sizes 10] [--baseline-sizes 10,25]
        [--idle-seconds 30]
        [--rounds 4] [--burst-rounds 3] [--keep DIR]

`--baseline-sizes` bounds the 0.5 s baseline: its idle cost grows ~47 ms of CPU per second per worker (issue
29), so 50 such workers want more than this machine's 2 cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.event_bench import (  # noqa: E402
    FLOWS,
    LABELER,
    MUTATING,
    REPO,
    WORKLOAD,
    Service,
    Stack,
    _epoch,
    checkout_for,
    prefect_database,
    process_tree,
    run_checked,
    tree_cpu_s,
)
from deployments.event_worker import WORKER_TYPE  # noqa: E402
from deployments.work_pools import pool_name  # noqa: E402
from sandbox.harness import VENV_BIN, Sandboxes, launch_prefect, wait_prefect  # noqa: E402

LATENCY_POOLS = 10
"""Pools with apply/rollback deployments, PRs and a namespace: the 10 labels at once land on different pools."""
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class WorkerKind:
    label: str
    slug: str
    type: str
    poll_s: float
    fast_start: bool
    """The event-process worker's fork server (runs start as its children); off: each run imports Prefect."""


EVENT = WorkerKind("event-process (events + 10 s safety poll, fork server)", "event", WORKER_TYPE, 10.0, True)
EVENT_SLOW = WorkerKind("event-process, INFRA_FAST_START=0 (each run's process imports Prefect)", "event-slow",
                        WORKER_TYPE, 10.0, False)
POLL = WorkerKind("process, 0.5 s poll (baseline)", "poll", "process", 0.5, False)
FORK_SERVER_READY = "fork server: ready on"


def target(index: int) -> str:
    return f"c{index:02d}"


def namespace(name: str) -> str:
    return f"shop-{name}"


def plan_path(name: str) -> str:
    return f"ops/plans/infra-scale/{name}/plan.yaml"


def plan_text(name: str) -> str:
    return (f"namespace: {namespace(name)}\ntarget: {name}\nactions:\n  - type: scale_workload\n"
            f"    name: {WORKLOAD}\n    replicas: 4\n    reason: fleet bench\n")


def fleet_prefect_yaml(names: list[str]) -> dict[str, Any]:
    """prefect.yaml's apply and rollback deployments of target prod, once per target (name, pool, trigger)."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    templates = [d for d in config["deployments"]
                 if d["name"] == "prod" and d["entrypoint"].split(":")[1] in ("infra_apply", "infra_rollback")]
    text = yaml.safe_dump(templates, sort_keys=False)
    config["deployments"] = [d for name in names for d in yaml.safe_load(text.replace("prod", name))]
    return config


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:")), 0.0)
    except OSError:
        return 0.0


def pss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return next((int(line.split()[1]) / 1024 for line in rollup if line.startswith("Pss:")), 0.0)
    except OSError:
        return 0.0


def tree_memory_mib(root: int) -> tuple[float, float]:
    """RSS and PSS of a worker and its descendants: its fork server, and the flow-run processes (none idle)."""
    pids = process_tree(root)
    return sum(rss_mib(pid) for pid in pids), sum(pss_mib(pid) for pid in pids)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Sample:
    """Seconds from a label's delivery to its run's creation (the automation), claim (Pending, the worker),
    Running state (the flow-run process) and first change."""

    created: float | None
    claim: float | None
    running: float | None
    change: float | None


@dataclass
class Fleet:
    stack: Stack
    servers: list[int]
    prs: dict[str, int] = field(default_factory=dict)
    workers: list[Service] = field(default_factory=list)
    applied: set[str] = field(default_factory=set)
    """Targets whose plan is applied: their next label is rollback-plan, so every run changes the cluster."""

    def start_workers(self, kind: WorkerKind, count: int) -> None:
        """Start workers on pools c00, c01, ... up to `count` in all, and wait until every one is online (and its
        fork server ready)."""
        env = {**self.stack.client_env(), "PREFECT_WORKER_QUERY_SECONDS": f"{kind.poll_s:g}",
               "INFRA_FAST_START": "1" if kind.fast_start else "0"}
        for index in range(len(self.workers), count):
            name = target(index)
            self.workers.append(Service.start(
                [str(VENV_BIN / "prefect"), "worker", "start", "--pool", pool_name(name), "--type", kind.type,
                 "--name", f"{kind.slug}-{name}"], env, self.stack.checkout,
                self.stack.tmp / f"worker-{kind.slug}-{name}.log"))  # fmt: skip
            time.sleep(0.5)  # spread the workers' imports a little
        deadline = time.monotonic() + 600
        waiting = {target(index) for index in range(count)}
        while waiting:
            for name in sorted(waiting):
                found = self.stack.api("POST", f"/work_pools/{pool_name(name)}/workers/filter", {})
                online = any(w["name"] == f"{kind.slug}-{name}" and w.get("status") == "ONLINE" for w in found)
                log = self.workers[int(name[1:])].log
                if online and (not kind.fast_start or FORK_SERVER_READY in log.read_text(errors="replace")):
                    waiting.discard(name)
            dead = [w.log for w in self.workers if w.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"workers did not come online ({sorted(waiting)}):\n"
                                 + (dead[0].read_text()[-3000:] if dead else ""))
            time.sleep(1)

    def stop_workers(self) -> None:
        """SIGTERM to every worker at once, then wait for them (Service.stop waits 20 s for each in turn)."""
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            worker.stop()  # SIGKILL to what still runs
        self.workers = []

    def server_cpu_s(self) -> float:
        return sum(tree_cpu_s(pid) for pid in self.servers)

    def idle(self, seconds: float) -> tuple[float, list[float], list[tuple[float, float]]]:
        """(server + PostgreSQL CPU ms/s, each worker's CPU ms/s, each worker's RSS and PSS MiB) over `seconds`."""
        pids = [worker.proc.pid for worker in self.workers]
        before = self.server_cpu_s(), [tree_cpu_s(pid) for pid in pids]
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        after = self.server_cpu_s(), [tree_cpu_s(pid) for pid in pids]
        workers = [1000 * (b - a) / elapsed for a, b in zip(before[1], after[1], strict=True)]
        memory = [tree_memory_mib(pid) for pid in pids]
        return 1000 * (after[0] - before[0]) / elapsed, workers, memory

    def label_round(self, names: list[str]) -> list[Sample]:
        """Label the PRs of `names` at once; when each label's run was claimed, Running, and changed the cluster."""
        stack, kube = self.stack, self.stack.sandboxes.kube
        seq = max((r["seq"] for r in kube.requests()), default=0)
        labels = {name: "rollback-plan" if name in self.applied else "execute-plan" for name in names}
        self.applied ^= set(names)
        deliveries = {}
        for name in names:
            stack.sandboxes.github.add_label(REPO, self.prs[name], labels[name], LABELER)
            deliveries[name] = stack.delivery(labels[name], self.prs[name], name)

        def post(name: str) -> float:
            body, headers = deliveries[name]
            posted = time.time()
            answer = httpx.post(stack.bridge_url + "/", content=body, headers=headers, timeout=30)
            if answer.status_code != 200:
                raise SystemExit(f"the bridge answered {answer.status_code}: {answer.text}")
            return posted

        with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
            posted = dict(zip(names, pool.map(post, names), strict=True))
        runs = {name: self.finished_run(FLOWS[labels[name]], name, posted[name]) for name in names}
        requests = kube.requests(seq)
        results = []
        for name in names:
            changes = [r["time"] for r in requests if r["method"] in MUTATING and r["time"] >= posted[name]
                       and f"/namespaces/{namespace(name)}/deployments/{WORKLOAD}" in r["path"]]
            states = stack.api("GET", f"/flow_run_states/?flow_run_id={runs[name]['id']}")
            first: dict[str, float] = {}
            for state in sorted(states, key=lambda s: str(s["timestamp"])):
                first.setdefault(state["type"], _epoch(state["timestamp"]) or 0.0)
            claim, running = (first[phase] - posted[name] if phase in first else None
                              for phase in ("PENDING", "RUNNING"))
            created = _epoch(runs[name]["created"])
            results.append(Sample(None if created is None else created - posted[name], claim, running,
                                  min(changes) - posted[name] if changes else None))
            if runs[name].get("state_type") != "COMPLETED":
                print(f"  note: {FLOWS[labels[name]]}/{name} ended {runs[name].get('state_type')}")
        return results

    def finished_run(self, flow: str, name: str, since: float, timeout_s: float = 300) -> dict[str, Any]:
        deployment = self.stack.api("GET", f"/deployments/name/{flow}/{name}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = self.stack.api("POST", "/flow_runs/filter", {
                "deployments": {"id": {"any_": [deployment["id"]]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 5})
            fresh = [run for run in runs if (_epoch(run["created"]) or 0) >= since - 0.5]
            if fresh and fresh[-1].get("state_type") in TERMINAL:
                return dict(fresh[-1])
            time.sleep(0.25)
        raise SystemExit(f"no finished {flow}/{name} run within {timeout_s:g} s")


def seed(stack: Stack, names: list[str]) -> dict[str, int]:
    """Users and the repository (Stack.seed), then per target a PR carrying its plan, the plan in the worker's
    checkout, and its namespace and workload in the sandbox cluster."""
    stack.seed()
    prs = {}
    for name in names:
        prs[name] = int(stack.sandboxes.github.open_pr(
            REPO, head=f"infra-scale/{name}", author="alice", title=f"infra-scale: {name}",
            files={plan_path(name): plan_text(name)}))  # fmt: skip
        (stack.checkout / plan_path(name)).parent.mkdir(parents=True, exist_ok=True)
        (stack.checkout / plan_path(name)).write_text(plan_text(name))
        stack.sandboxes.kube.create_namespace(namespace(name))
        stack.sandboxes.kube.create_deployment(namespace(name), WORKLOAD, replicas=2)
    return prs


def deploy(stack: Stack, pools: int, names: list[str]) -> None:
    env = stack.client_env()
    (stack.checkout / "prefect.yaml").write_text(yaml.safe_dump(fleet_prefect_yaml(names), sort_keys=False))
    run_checked([str(VENV_BIN / "python"), "-m", "deployments.work_pools", *[target(i) for i in range(pools)]],
                env, stack.checkout, "deployments.work_pools")
    run_checked([str(VENV_BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, stack.checkout,
                "prefect deploy --all")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def latency_line(what: str, samples: list[Sample]) -> str:
    parts = []
    for field_name, name in (("created", "run created"), ("claim", "claim"), ("running", "Running"),
                             ("change", "first change")):
        values = [value for value in (getattr(s, field_name) for s in samples) if value is not None]
        parts.append(f"label -> {name} median {statistics.median(values):.2f} s, p95 {percentile(values, 0.95):.2f} s"
                     if values else f"label -> {name} ?")
    missing = sum(1 for s in samples if s.change is None)
    return f"  {what} ({len(samples)} labels{f', {missing} without a change' if missing else ''}): " + "; ".join(parts)


def measure(fleet: Fleet, kind: WorkerKind, sizes: list[int], args: argparse.Namespace, quiet_cpu: float) -> None:
    print(f"\n== {kind.label}")
    for index, size in enumerate(sizes):
        fleet.start_workers(kind, size)
        time.sleep(args.settle_seconds)
        load_before = load()
        server, workers, memory = fleet.idle(args.idle_seconds)
        rss, pss = [m[0] for m in memory], [m[1] for m in memory]
        print(f"  N={size:>2} idle {args.idle_seconds:g} s (load average {load_before} -> {load()}): server + "
              f"PostgreSQL {server:.0f} ms/s in all, {(server - quiet_cpu) / size:.1f} ms/s per worker above no "
              f"worker ({server / size:.1f} ms/s / N); worker CPU median {statistics.median(workers):.1f} ms/s, "
              f"max {max(workers):.1f}; worker RSS median {statistics.median(rss):.0f} MiB, max {max(rss):.0f}, "
              f"PSS median {statistics.median(pss):.0f} MiB, max {max(pss):.0f}")
        if index == 0:
            names = [target(i) for i in range(min(LATENCY_POOLS, size))]
            fleet.label_round(names)  # warm-up, not counted: each pool's first run meets cold caches
            time.sleep(args.pause)
            singles = []
            for _ in range(args.rounds):
                singles += fleet.label_round(names[:1])
                time.sleep(args.pause)
            print(latency_line(f"N={size}, 1 label at a time", singles))
            bursts = []
            for _ in range(args.burst_rounds):
                bursts += fleet.label_round(names)
                time.sleep(args.pause)
            if bursts:
                print(latency_line(f"N={size}, {len(names)} labels at once on different pools", bursts))
    fleet.stop_workers()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,25,50", help="fleet sizes for the event-woken worker")
    parser.add_argument("--slow-start-sizes", default="10",
                        help="fleet sizes for the event-woken worker without its fork server (INFRA_FAST_START=0)")
    parser.add_argument("--baseline-sizes", default="10,25", help="fleet sizes for the 0.5 s polling baseline")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--settle-seconds", type=float, default=10, help="after the last worker is online")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of 1 label")
    parser.add_argument("--burst-rounds", type=int, default=3, help="rounds of 10 labels at once")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--keep", type=Path, help="copy the logs here at the end")
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",") if v]
    slow = [int(v) for v in args.slow_start_sizes.split(",") if v]
    baseline = [int(v) for v in args.baseline_sizes.split(",") if v]
    pools = max(sizes + slow + baseline)
    names = [target(i) for i in range(min(LATENCY_POOLS, pools))]
    print(f"machine: {os.cpu_count()} cores, load average {load()}; Prefect server on PostgreSQL; {pools} pools")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp_name, prefect_database("postgresql") as database:
        tmp = Path(tmp_name)
        prefect = launch_prefect(tmp)
        sandboxes = Sandboxes(tmp)
        stack = Stack(prefect, sandboxes, checkout_for(tmp), tmp)
        fleet: Fleet | None = None
        try:
            sandboxes.start()
            wait_prefect(prefect)
            fleet = Fleet(stack, [proc.pid for proc in (prefect.proc, database and database.proc) if proc])
            fleet.prs = seed(stack, names)
            deploy(stack, pools, names)
            stack.start_bridge()
            time.sleep(args.settle_seconds)
            before = fleet.server_cpu_s()
            time.sleep(args.idle_seconds)
            quiet = 1000 * (fleet.server_cpu_s() - before) / args.idle_seconds
            print(f"no worker: server + PostgreSQL {quiet:.0f} ms/s over {args.idle_seconds:g} s")
            for kind, kind_sizes in ((EVENT, sizes), (EVENT_SLOW, slow), (POLL, baseline)):
                if kind_sizes:
                    measure(fleet, kind, kind_sizes, args, quiet)
        finally:
            stack.stop()
            if fleet is not None:
                fleet.stop_workers()
            if args.keep:
                shutil.copytree(tmp, args.keep, symlinks=True, dirs_exist_ok=True)
            prefect.stop()
            sandboxes.stop()
    print(f"load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
