"""Benchmark execution (issue 5, Measure): apply then roll back plans of 10 and 100 deployments (scale +
resources + HPA each) with `infra-apply --execute` / `infra-rollback --execute` against the sandbox API server,
and compare with a baseline that runs the same kubectl commands one after another from a bash script, in the
same run.

Everything is real except the cluster and GitHub: real kubectl, the in-process sandbox API server, the GitHub
test server with a labeled PR (the real gate), and a Prefect server (`$PREFECT_API_URL`, or a local
`prefect server start` with its own PREFECT_HOME, on a PostgreSQL of its own as production runs it, or with
`--database sqlite` on Prefect's default SQLite: there, about one run in three waits ~2 s for the concurrency
slot, whose write SQLite refuses while another is under way; the server answers 503 and Prefect's client retries).

Every kubectl call (ours and the baseline's) goes through the same wrapper script (`KUBECTL=wrapper`), which
runs /usr/bin/kubectl and appends start, end and arguments to a log; so call counts are counted, not inferred.

Figures
- ratio: wall time of our CLI run / wall time of the baseline script.
- overhead per step: (our wall - time during which at least one kubectl process was running) / steps, i.e.
  the wall time in which the run was doing something other than waiting on kubectl (Python and Prefect start-up,
  the flow engine, gate checks over HTTP, task scheduling), spread over the plan's steps. Also shown without the
  fixed start-up part (the time before the first kubectl call).
- kubectl calls per plan, by kind (steps, rollout status, capture reads, lease lock, records); capture calls per
  namespace are the reads before the first change.
- peak RSS: the CLI process tree's resident memory summed, sampled from /proc every 0.1 s; and the largest
  single process (wait4's ru_maxrss).

Targets: <= 0.6x the baseline at 100 deployments (2 cores), <= 10 ms overhead per step, capture <= 2 kubectl
calls per namespace.

With `--latency-ms MS` the sandbox delays every API request by MS (a cluster some way off). With
`--baseline-sample N`, a plan over more than N deployments has its baseline run for the steps on N of them
only, and that time scaled by the step count (printed as extrapolated): the shell loop over 1,000
deployments is 9,000 kubectl processes.

    .venv/bin/python bench/execution_bench.py [--quick] [--sizes 10,100,1000] [--latency-ms 20]
        [--baseline-sample 100] [--database sqlite]
    .venv/bin/python bench/execution_bench.py --event-latency [--runs 5] [--poll-seconds 0.5]   # bench/event_bench.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.event_bench import DATABASE_HELP, DATABASES, prefect_database  # noqa: E402
from bench.preview_bench import compile_project  # noqa: E402
from core.conventions import LABELS  # noqa: E402
from sandbox.harness import Prefect, Sandboxes, command_for, launch_prefect, summary_of, wait_prefect  # noqa: E402

REAL_KUBECTL = os.environ.get("REAL_KUBECTL", "/usr/bin/kubectl")
APP = {"name": "app", "image": "bench/app:1.0",
       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}}
WRAPPER = """#!/bin/bash
start=$EPOCHREALTIME
{kubectl} "$@"
rc=$?
printf '%s %s %s\\n' "$start" "$EPOCHREALTIME" "$*" >> {log}
exit $rc
"""


def plan_text(namespace: str, count: int) -> str:
    lines = [f"namespace: {namespace}", "target: bench", "actions:"]
    for index in range(count):
        name = f"app-{index:03d}"
        lines += [
            f"  - {{type: scale_workload, name: {name}, replicas: 3}}",
            f"  - {{type: update_resources, name: {name}, container: app, requests: {{cpu: 200m, memory: 192Mi}}, "
            f"limits: {{cpu: 800m, memory: 384Mi}}}}",
            f"  - {{type: apply_hpa, name: {name}, minReplicas: 3, maxReplicas: 8, "
            f"targetCPUUtilizationPercentage: 70}}",
        ]
    return "\n".join(lines) + "\n"


def hpa_manifest(namespace: str, name: str) -> str:
    return (f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}, namespace: "
            f"{namespace}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}\n"
            f"  minReplicas: 3\n  maxReplicas: 8\n  metrics:\n  - type: Resource\n    resource:\n"
            f"      name: cpu\n      target: {{type: Utilization, averageUtilization: 70}}\n")


@dataclass
class Call:
    start: float
    end: float
    args: str


@dataclass
class Run:
    started_at: float
    wall: float
    calls: list[Call]
    peak_tree_rss_kb: int = 0
    max_process_rss_kb: int = 0
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    """CPU time (user + system) of the process and its children, from wait4: less sensitive to load than wall."""
    server_cpu_s: float = 0.0
    """CPU time of this bench process meanwhile: the in-process sandbox API server and GitHub test server."""
    scale: float = 1.0
    """A sampled baseline's factor to the whole plan: `estimate` is `wall` times it."""

    @property
    def estimate(self) -> float:
        return self.wall * self.scale

    def busy(self) -> float:
        """Wall time during which at least one kubectl process was running (union of intervals)."""
        total, cursor = 0.0, float("-inf")
        for call in sorted(self.calls, key=lambda c: c.start):
            if call.end > cursor:
                total += call.end - max(call.start, cursor)
                cursor = call.end
        return total


def read_calls(log: Path, since: int) -> tuple[list[Call], int]:
    lines = log.read_text().splitlines() if log.exists() else []
    calls = []
    for line in lines[since:]:
        start, end, args = line.split(" ", 2)
        calls.append(Call(float(start), float(end), args))
    return calls, len(lines)


def tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as statm:
                rss[int(entry)] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


WARM_UP = "from flows.apply import infra_apply; infra_apply(plan={plan!r})"


def warm_up(checkout: Path, env: dict[str, str], plan: str) -> None:
    """One preview flow run on the new Prefect server before anything is timed: a fresh server answers its first
    requests slowly (the first flow-run read took 0.34 s, then 4 ms), which a production server, long running,
    never does, and the first measured run would pay it alone."""
    subprocess.run([sys.executable, "-c", WARM_UP.format(plan=plan)], cwd=checkout, env=env, check=True,
                   capture_output=True, timeout=120)


def measured(command: list[str], cwd: Path, env: dict[str, str], log: Path, stdin_text: str | None = None) -> Run:
    _, before = read_calls(log, 0)
    started = time.time()
    server_cpu = time.process_time()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin_text is not None else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda s=stream, b=buf: b.append(s.read()), daemon=True)
               for stream, buf in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for reader in readers:
        reader.start()
    if stdin_text is not None and proc.stdin is not None:
        proc.stdin.write(stdin_text)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    for reader in readers:
        reader.join()
    calls, _ = read_calls(log, before)
    run = Run(started, wall, calls, peak[0], int(usage.ru_maxrss), "".join(out_chunks), "".join(err_chunks),
              proc.returncode)
    run.summary = summary_of(run.stdout) or {}
    run.cpu_s = usage.ru_utime + usage.ru_stime
    run.server_cpu_s = time.process_time() - server_cpu
    return run


def _epoch(stamp: str | None) -> float | None:
    return dt.datetime.fromisoformat(stamp).timestamp() if stamp else None


def phases(api_url: str, run: Run) -> str:
    """Where a run's time outside kubectl went, from the Prefect server's record of it (the latest flow run):
    when the flow run was created and started, and each task run that started before the first kubectl call or
    after the last one ended, as seconds from the CLI's start."""
    flow_run = httpx.post(f"{api_url}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC", "limit": 1},
                          timeout=10).json()[0]
    task_runs = httpx.post(f"{api_url}/task_runs/filter", timeout=10, json={
        "flow_runs": {"id": {"any_": [flow_run["id"]]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}).json()
    first = min((c.start for c in run.calls), default=run.started_at + run.wall) - run.started_at
    last = max((c.end for c in run.calls), default=run.started_at) - run.started_at

    def at(stamp: str | None) -> str:
        moment = _epoch(stamp)
        return "?" if moment is None else f"{moment - run.started_at:.2f}"

    outside = []
    for task in task_runs:
        start, end = _epoch(task.get("start_time")), _epoch(task.get("end_time"))
        if start is None or first <= start - run.started_at <= last:
            continue
        outside.append(f"{task['name']} {at(task['start_time'])}+{(end or start) - start:.2f}")
    return (f"flow run created {at(flow_run.get('created'))}, started {at(flow_run.get('start_time'))}, ended "
            f"{at(flow_run.get('end_time'))}; first kubectl call {first:.2f}, last ended {last:.2f}, exit "
            f"{run.wall:.2f}; task runs outside kubectl (start+duration): {', '.join(outside) or 'none'}")


def verb(args: str) -> str:
    """The kubectl verb and object of a call, e.g. `get lease/x` -> `get lease`, `rollout status` ..."""
    words = [w for w in args.split() if not w.startswith("-")]
    skip = {"-n", "--namespace", "--context", "-o"}
    raw = args.split()
    for index, word in enumerate(raw):
        if word in skip and index + 1 < len(raw) and raw[index + 1] in words:
            words.remove(raw[index + 1])
    subresource = " /scale" if "--subresource=scale" in raw else ""
    stdin = " -f -" if " -f - " in f" {args} " else ""
    return " ".join(w.split("/")[0] for w in words[:2]) + subresource + stdin


def category(args: str) -> str:
    what = verb(args)
    if "lease" in what or "/leases/" in args:
        return "lock"
    if "configmap" in what:
        return "record"
    if what == "rollout status":
        return "verify"
    if what.startswith("get"):
        return "read"
    return "step"


def kinds(run: Run) -> list[str]:
    """The kind of each call (in start order): commands listed in the JSON summary are `step`, or `verify` for
    `rollout status`; the others are lock, record, read, or `other write` (a stdin manifest not in the summary:
    lock or record writes)."""
    listed: dict[str, int] = {}
    for result in run.summary.get("results", []):
        key = " ".join(shlex.split(result["command"])[1:])
        listed[key] = listed.get(key, 0) + 1
    out: list[str] = []
    for call in sorted(run.calls, key=lambda c: c.start):
        shared = call.args.endswith(" -o name") or call.args.count(" deployment/") > 1
        if listed.get(call.args, 0) > 0 or shared:
            listed[call.args] = listed.get(call.args, 1) - 1
            kind = "verify" if verb(call.args) == "rollout status" else "step"
        else:
            kind = category(call.args)
            kind = "other write" if kind == "step" else kind
        out.append(kind)
    return out


def counts(run: Run) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind in kinds(run):
        out[kind] = out.get(kind, 0) + 1
    return out


def verbs(run: Run) -> dict[str, str]:
    """Calls and seconds in kubectl per verb, e.g. {"scale deployment": "10 calls 1.2 s"}."""
    calls: dict[str, list[float]] = {}
    for call in run.calls:
        calls.setdefault(verb(call.args), []).append(call.end - call.start)
    return {name: f"{len(times)} calls {sum(times):.1f} s" for name, times in sorted(calls.items())}


def capture_reads(run: Run) -> int:
    """Reads (not lock/record) before the first change."""
    reads = 0
    for kind in kinds(run):
        if kind == "step":
            break
        reads += kind == "read"
    return reads


_DEPLOYMENT = re.compile(r"\bapp-(\d{3})\b")


def sampled(results: list[dict[str, Any]], deployments: int | None) -> list[dict[str, Any]]:
    """The results on the first `deployments` deployments (and their HPAs); all of them for None."""
    def index(result: dict[str, Any]) -> int:
        found = _DEPLOYMENT.search(f"{result['command']} {result.get('note', '')}")
        return int(found.group(1)) if found else 0
    return [result for result in results if deployments is None or index(result) < deployments]


def baseline_script(run: Run, directory: Path, namespace: str, wrapper: Path, name: str,
                    deployments: int | None = None) -> Path:
    """The same step and verification commands as our run (on the first `deployments` deployments only, if
    given), one after another; HPA manifests from files."""
    lines = ["#!/bin/bash", "set -e"]
    for result in sampled(run.summary.get("results", []), deployments):
        argv = shlex.split(result["command"])
        assert argv[0] == "kubectl", result["command"]
        if argv[-2:] == ["-f", "-"]:
            note = str(result.get("note", ""))  # e.g. "applied hpa/app-007"
            assert "hpa/" in note, f"cannot tell which HPA {result} applies"
            hpa_name = note.split("hpa/")[1].split()[0]
            manifest = directory / f"{name}-hpa-{hpa_name}.yaml"
            manifest.write_text(hpa_manifest(namespace, hpa_name))
            argv = [*argv[:-1], str(manifest)]
        lines.append(shlex.join([str(wrapper), *argv[1:]]))
    script = directory / f"{name}.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 deployments only")
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay the sandbox adds to every request")
    parser.add_argument("--baseline-sample", type=int, default=None,
                        help="run the baseline on this many deployments at most, and scale its time")
    parser.add_argument("--database", choices=DATABASES, default="postgresql", help=DATABASE_HELP)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of ours then the baseline, per size; figures are the median round's (this "
                             "machine's speed drifts by 2x within minutes, so one round's ratio can mislead)")
    parser.add_argument("--event-latency", action="store_true",
                        help="label to first change through the webhook bridge and a worker instead "
                             "(bench/event_bench.py; its flags follow, e.g. --runs 5 --poll-seconds 1,0.5)")
    if "--event-latency" in sys.argv[1:]:
        from bench.event_bench import main as event_latency

        return event_latency([arg for arg in sys.argv[1:] if arg != "--event-latency"])
    args = parser.parse_args()
    sizes = [10] if args.quick else [int(size) for size in args.sizes.split(",") if size]

    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())};"
          f" sandbox latency {args.latency_ms:g} ms per request; Prefect server on "
          f"{'$PREFECT_API_URL' if os.environ.get('PREFECT_API_URL') else args.database}")
    print(compile_project())
    with tempfile.TemporaryDirectory(prefix="execution-bench-") as tmp_name, prefect_database(args.database):
        tmp = Path(tmp_name)
        log = tmp / "kubectl-calls.log"
        wrapper = tmp / "kubectl-wrapper"
        wrapper.write_text(WRAPPER.format(kubectl=shlex.quote(REAL_KUBECTL), log=shlex.quote(str(log))))
        wrapper.chmod(0o755)
        prefect: Prefect = launch_prefect(tmp)
        sandboxes = Sandboxes(tmp)
        try:
            sandboxes.start()
            wait_prefect(prefect)
            env = {**sandboxes.env(prefect), "KUBECTL": str(wrapper)}
            checkout = tmp / "checkout"
            plans = {}
            for size in sizes:
                namespace = f"bench-{size}"
                for index in range(size):
                    sandboxes.kube.create_deployment(namespace, f"app-{index:03d}", replicas=2, containers=[APP],
                                                     wait=False)
                sandboxes.kube.settle(60)
                path = f"ops/plans/bench-{size}/plan.yaml"
                (checkout / path).parent.mkdir(parents=True)
                (checkout / path).write_text(plan_text(namespace, size))
                plans[size] = (namespace, path)
            sandboxes.kube.latency_s = args.latency_ms / 1000
            sandboxes.github.create_repo("acme/infra", files={"README.md": "# infra\n"})
            sandboxes.github.add_collaborator("acme/infra", "alice", "admin")
            warm_up(checkout, env, plans[sizes[0]][1])
            rows = []
            for size in sizes:
                namespace, path = plans[size]
                pr = sandboxes.github.open_pr("acme/infra", head=f"bench-{size}", author="alice",
                                              title=f"bench {size}", files={path: (checkout / path).read_text()})
                bench = Bench(sandboxes, prefect, checkout, env, wrapper, log, tmp)
                rounds = [one_round(bench, namespace, path, pr, size, args.baseline_sample)
                          for _ in range(args.repeat)]
                result = median_round(rounds)
                rows.append(result)
                report(result)
            summary_table(rows)
        finally:
            prefect.stop()
            sandboxes.stop()
    return 0


@dataclass
class Bench:
    """What every round runs against: the servers, the checkout and CLI environment, the kubectl wrapper and its
    call log, and the directory for the baseline's scripts."""

    sandboxes: Sandboxes
    prefect: Prefect
    checkout: Path
    env: dict[str, str]
    wrapper: Path
    log: Path
    scripts: Path


def one_round(bench: Bench, namespace: str, path: str, pr: int, size: int,
              baseline_sample: int | None) -> dict[str, Any]:
    """Our apply and rollback, then the baseline's (it replays both, so the cluster ends as it began); and how
    long `import prefect` took just before, a measure of the machine's speed in that round."""
    result: dict[str, Any] = {"size": size, "import-prefect-s": import_prefect_s(bench.env)}
    for flow, label in LABELS.items():
        bench.sandboxes.github.add_label("acme/infra", pr, label, "alice")
        ours = measured([*command_for(flow.flow_name), "--execute", f"--pr={pr}", f"--plan={path}"],
                        bench.checkout, bench.env, bench.log)
        if ours.returncode != 0 or not ours.summary:
            print(ours.stdout[-3000:], ours.stderr[-3000:], sep="\n")
            raise SystemExit(f"{flow.flow_name} failed at {size} deployments (exit {ours.returncode})")
        result[flow] = ours
        try:
            result[f"{flow}-phases"] = phases(bench.prefect.api_url, ours)
        except (httpx.HTTPError, IndexError, KeyError) as error:  # a figure lost, not the run
            result[f"{flow}-phases"] = f"unavailable ({error!r})"
    sample = baseline_sample if baseline_sample and baseline_sample < size else None
    for flow in ("apply", "rollback"):
        script = baseline_script(result[flow], bench.scripts, namespace, bench.wrapper, f"baseline-{size}-{flow}",
                                 sample)
        base = measured(["/bin/bash", str(script)], bench.checkout, bench.env, bench.log)
        if base.returncode != 0:
            raise SystemExit(f"baseline {flow} failed at {size}: {base.stderr[-2000:]}")
        all_steps = result[flow].summary.get("results", [])
        base.scale = len(all_steps) / max(len(sampled(all_steps, sample)), 1)
        result[f"{flow}-baseline"] = base
    return result


def import_prefect_s(env: dict[str, str]) -> float:
    """Wall time of `python -c "import prefect"` (bytecode cached): the largest fixed cost of a CLI run."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import prefect"], env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - started


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per flow, the round whose ratio (ours / baseline) is the median, with every round's ratio, time outside
    kubectl and `import prefect` time beside it."""
    merged: dict[str, Any] = {"size": rounds[0]["size"],
                              "import-prefect": [r["import-prefect-s"] for r in rounds]}
    for flow in ("apply", "rollback"):
        ranked = sorted(rounds, key=lambda r: r[flow].wall / r[f"{flow}-baseline"].estimate)
        middle = ranked[(len(ranked) - 1) // 2]
        for key in (flow, f"{flow}-phases", f"{flow}-baseline"):
            merged[key] = middle[key]
        merged[f"{flow}-ratios"] = [r[flow].wall / r[f"{flow}-baseline"].estimate for r in rounds]
        merged[f"{flow}-outside"] = [r[flow].wall - r[flow].busy() for r in rounds]
    return merged


def report(result: dict[str, Any]) -> None:
    size = result["size"]
    print(f"\n== {size} deployments ({3 * size} actions)")
    print(f"  `import prefect` before each round, s: {', '.join(f'{s:.2f}' for s in result['import-prefect'])}")
    for flow in ("apply", "rollback"):
        ours: Run = result[flow]
        base: Run = result[f"{flow}-baseline"]
        steps = len(ours.summary.get("results", []))
        startup = min(c.start for c in ours.calls) - ours.started_at if ours.calls else 0.0
        idle = ours.wall - ours.busy()
        sampled_note = f" (extrapolated x{base.scale:.1f} from a sample)" if base.scale != 1 else ""
        print(f"  {flow:<8} ours {ours.wall:7.2f} s  baseline {base.estimate:7.2f} s{sampled_note}  ratio"
              f" {ours.wall / base.estimate:5.2f}x"
              f"  | steps {steps}, kubectl calls ours {len(ours.calls)} {counts(ours)}, baseline {len(base.calls)}")
        print(f"           not-in-kubectl wall {idle:6.2f} s = {idle / steps * 1000:6.1f} ms/step"
              f" (of which ~{startup:.2f} s before the first kubectl call; without it "
              f"{max(idle - startup, 0) / steps * 1000:.1f} ms/step)")
        in_kubectl = sum(c.end - c.start for c in ours.calls)
        print(f"           time in kubectl: ours busy {ours.busy():.2f} s (sum {in_kubectl:.2f} s)"
              f", baseline sum {sum(c.end - c.start for c in base.calls):.2f} s;"
              f" peak RSS tree {ours.peak_tree_rss_kb / 1024:.0f} MiB, largest process"
              f" {ours.max_process_rss_kb / 1024:.0f} MiB")
        print(f"           CPU: ours {ours.cpu_s:.1f} s (sandbox servers {ours.server_cpu_s:.1f} s), baseline"
              f" {base.cpu_s * base.scale:.1f} s (sandbox servers {base.server_cpu_s * base.scale:.1f} s)")
        print(f"           kubectl by verb: {verbs(ours)}")
        print(f"           phases (s from the CLI's start): {result[f'{flow}-phases']}")
        if len(result[f"{flow}-ratios"]) > 1:
            print(f"           every round's ratio (this one is the median): "
                  f"{', '.join(f'{ratio:.2f}' for ratio in result[f'{flow}-ratios'])}")
            print(f"           every round's time outside kubectl, s: "
                  f"{', '.join(f'{seconds:.2f}' for seconds in result[f'{flow}-outside'])}"
                  f" (median {statistics.median(result[f'{flow}-outside']):.2f})")
        if flow == "apply":
            print(f"           capture: {capture_reads(ours)} kubectl reads before the first change (1 namespace)")
        result[f"{flow}-idle-ms"] = idle / steps * 1000
        result[f"{flow}-idle-s"] = idle
        result[f"{flow}-steps"] = steps


def summary_table(rows: list[dict[str, Any]]) -> None:
    print("\nsummary (targets: ratio <= 0.6x at 100 deployments; overhead <= 10 ms/step; capture <= 2 calls/ns)")
    header = f"{'deployments':>11} {'flow':<9}{'ours s':>8}{'base s':>8}{'ratio':>7}{'ms/step':>9}{'calls':>7}" \
             f"{'base calls':>11}{'capture':>8}{'RSS MiB':>8}"
    print(header + "\n" + "-" * len(header))
    for row in rows:
        for flow in ("apply", "rollback"):
            ours: Run = row[flow]
            base: Run = row[f"{flow}-baseline"]
            capture = str(capture_reads(ours)) if flow == "apply" else "-"
            print(f"{row['size']:>11} {flow:<9}{ours.wall:>8.2f}{base.estimate:>8.2f}{ours.wall / base.estimate:>7.2f}"
                  f"{row[f'{flow}-idle-ms']:>9.1f}{len(ours.calls):>7}{len(base.calls):>11}{capture:>8}"
                  f"{ours.peak_tree_rss_kb / 1024:>8.0f}")
    if len(rows) < 2:
        return
    small, large = rows[0], rows[-1]
    print("\noverhead split into a fixed part per run and a part per step (the slope between the smallest and the"
          " largest plan):")
    for flow in ("apply", "rollback"):
        added_steps = large[f"{flow}-steps"] - small[f"{flow}-steps"]
        per_step = (large[f"{flow}-idle-s"] - small[f"{flow}-idle-s"]) / added_steps
        fixed = small[f"{flow}-idle-s"] - per_step * small[f"{flow}-steps"]
        print(f"  {flow:<8} {per_step * 1000:5.1f} ms per step + {fixed:4.1f} s per run (Python and Prefect start-up,"
              f" flow run, gate, artifacts, teardown)")


if __name__ == "__main__":
    sys.exit(main())
