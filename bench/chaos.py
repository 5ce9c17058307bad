"""Seeded chaos: random API faults, `kill -9` and concurrent triggers against the sandbox, through the real CLI.

Each seed builds a fresh world (the sandbox API server, the GitHub test server with a labeled PR), then applies
and rolls back one plan (a scale, a resources change, a new HPA and a changed HPA) with `infra-apply --execute`
and `infra-rollback --execute`, while the sandbox injects the seed's faults: 5xx and 429 answers, dropped
connections, and writes that commit only after kubectl's timeout. Some runs are killed with SIGKILL (the whole
process group, kubectl included) at a random moment and run again; some are triggered twice at once; some get
SIGTERM (a worker shutting down: the CLI alone, kubectl not signalled); some are stopped with SIGSTOP (the CLI
alone, holding a 6 s lease) while a second run is triggered, which takes the lock over, and are resumed
(SIGCONT) once that second run ended. A run that fails or is refused is triggered again, as a person would (the
label added again), at most `MAX_RUNS` times.

After each phase it checks:
- the final state equals the plan after apply, and the prior state after rollback, field by field;
- every mutation landed exactly once: no object got the same kind of write twice (from the sandbox's request log);
- the record in the cluster parses, says what the phase did, and agrees with the local mirror;
- the lock (the Lease) is free;
- no output holds a traceback.

    .venv/bin/python bench/chaos.py --seeds 200 [--first 0] [--verbose]

Figures: per-category counts of findings, and of the faults, kills and concurrent triggers that happened.
`tests/chaos` runs a CI-sized slice of the same trials.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.plan import load_plan  # noqa: E402
from core.record import STAMP_FIELD_MANAGER  # noqa: E402
from core.state import normalized_resources  # noqa: E402
from sandbox.harness import Prefect, Sandboxes, command_for, start_prefect  # noqa: E402

NAMESPACE = "chaos"
PLAN_PATH = "ops/plans/infra-scale/chaos/plan.yaml"
PLAN = f"""\
namespace: {NAMESPACE}
target: chaos
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
  - {{type: update_resources, name: api, container: app, requests: {{cpu: 300m, memory: 192Mi}}, limits: {{cpu: 600m}}}}
  - {{type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 70}}
  - {{type: apply_hpa, name: worker, minReplicas: 3, maxReplicas: 6}}
"""
APP = {"name": "app", "image": "chaos/app:1.0",
       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m"}}}
KUBECTL_TIMEOUT_S = 4.0
"""INFRA_KUBECTL_TIMEOUT for the runs: short, so that a delayed write outlives kubectl's wait."""
MAX_RUNS = 5
STOPPED_LEASE_S = 6
"""INFRA_LEASE_SECONDS of a run that is stopped with SIGSTOP: short, so that the run triggered meanwhile takes
its lock over within the trial."""
LABELS = {"apply": "execute-plan", "rollback-plan": "rollback-plan", "rollback": "rollback-plan"}
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
BOOKKEEPING = ("/configmaps", "/leases")
"""Records and the lock are rewritten on purpose; every other object must get each kind of write once."""


@dataclass
class Trial:
    seed: int
    findings: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def find(self, category: str, detail: str) -> None:
        self.findings.append(f"{category}: {detail}")


# --------------------------------------------------------------------------- the world of one seed
def seed_cluster(kube: Any) -> None:
    kube.create_namespace(NAMESPACE)
    for name, replicas in (("web", 2), ("api", 1), ("worker", 3)):
        kube.create_deployment(NAMESPACE, name, replicas=replicas, containers=[dict(APP)])
    kube.create_hpa(NAMESPACE, "worker", "worker", 2, 5)
    kube.settle()


def snapshot(kube: Any) -> dict[str, Any]:
    """What the plan touches: replicas, each container's resources (canonical quantities), the HPA specs."""
    state: dict[str, Any] = {}
    for name in ("web", "api", "worker"):
        deployment = kube.get("Deployment", NAMESPACE, name)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        state[name] = {"replicas": deployment["spec"].get("replicas"),
                       "resources": {c["name"]: normalized_resources(c.get("resources")) for c in containers}}
    for name in ("web", "worker"):
        hpa = kube.get("HorizontalPodAutoscaler", NAMESPACE, name)
        state[f"hpa/{name}"] = None if hpa is None else {
            key: hpa["spec"].get(key) for key in ("scaleTargetRef", "minReplicas", "maxReplicas")}
    return state


def planned(prior: Mapping[str, Any]) -> dict[str, Any]:
    """The state the plan asks for, from the prior one."""
    wanted = {key: value for key, value in prior.items()}
    wanted["web"] = {**prior["web"], "replicas": 4}
    resources = {"requests": {"cpu": "300m", "memory": "192Mi"}, "limits": {"cpu": "600m"}}
    wanted["api"] = {**prior["api"], "resources": {"app": normalized_resources(resources)}}
    ref = {"apiVersion": "apps/v1", "kind": "Deployment"}
    wanted["hpa/web"] = {"scaleTargetRef": {**ref, "name": "web"}, "minReplicas": 3, "maxReplicas": 8}
    wanted["hpa/worker"] = {"scaleTargetRef": {**ref, "name": "worker"}, "minReplicas": 3, "maxReplicas": 6}
    return wanted


def differences(wanted: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    return [f"{key}: wanted {wanted[key]}, found {live.get(key)}" for key in wanted if wanted[key] != live.get(key)]


# --------------------------------------------------------------------------- faults, kills, triggers
FAULT_PATHS = {
    "scale": r"/deployments/[^/]+/scale$",
    "workload": r"/deployments/[^/]+$",
    "hpa": r"/horizontalpodautoscalers",
    "record": r"/configmaps",
    "lock": r"/leases",
    "any": r"/(api|apis)/",
}


def random_faults(rng: random.Random) -> list[dict[str, Any]]:
    """0 to 3 fault rules: an error answer, a dropped connection, or a write that lands after kubectl gave up."""
    rules = []
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        where = rng.choice(sorted(FAULT_PATHS))
        method = rng.choice(("GET", "PATCH", "PUT", "POST", "DELETE", None))
        kind = rng.choice(("status", "status", "drop", "late-write"))
        rule: dict[str, Any] = {"path_regex": FAULT_PATHS[where], "count": rng.randint(1, 3),
                                "fraction": round(rng.uniform(0.2, 0.6), 2)}
        if kind == "late-write":
            rule.update(method=rng.choice(("PATCH", "PUT", "POST")), latency_s=KUBECTL_TIMEOUT_S + 1.5, count=1)
        elif kind == "drop":
            rule.update(method=method, drop=True)
        else:
            status = rng.choice((500, 502, 503, 429))
            rule.update(method=method, status=status, **({"retry_after": 1} if status == 429 else {}))
        rules.append({key: value for key, value in rule.items() if value is not None})
    return rules


def fault_kind(rule: Mapping[str, Any]) -> str:
    return "late-write" if rule.get("latency_s") else "drop" if rule.get("drop") else str(rule.get("status"))


@dataclass
class Run:
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""


def holding(kube: Any, process: subprocess.Popen[str], delay_s: float) -> bool:
    """Wait until the run holds the lock, then `delay_s` more (into its changes); False if it ended first."""
    deadline = time.monotonic() + 120
    while lock_holder(kube) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay_s)
    return process.poll() is None


def terminate_after(kube: Any, process: subprocess.Popen[str], delay_s: float) -> Run:
    """SIGTERM to the CLI alone `delay_s` after it took the lock (unless it ended before), then its outcome."""
    if holding(kube, process, delay_s):
        process.send_signal(signal.SIGTERM)
    return finish(process)


def stop_while(kube: Any, process: subprocess.Popen[str], delay_s: float, meanwhile: Any) -> list[Run]:
    """SIGSTOP the CLI alone `delay_s` after it took the lock, run `meanwhile()` (another trigger's runs), then
    SIGCONT it."""
    if not holding(kube, process, delay_s):
        return [finish(process), *meanwhile()]
    process.send_signal(signal.SIGSTOP)
    try:
        others = meanwhile()
    finally:
        process.send_signal(signal.SIGCONT)
    return [*others, finish(process)]


def start(flow: str, pr: int, checkout: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    args = [*command_for(f"infra-{flow}"), "--execute", f"--pr={pr}", f"--plan={PLAN_PATH}"]
    return subprocess.Popen(args, cwd=checkout, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(process: subprocess.Popen[str], timeout_s: float = 300) -> Run:
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return Run(None, out, err + f"\n(chaos: killed after {timeout_s:g}s: hung)")
    return Run(process.returncode, out, err)


def kill_after(process: subprocess.Popen[str], delay_s: float) -> Run:
    try:
        out, err = process.communicate(timeout=delay_s)
        return Run(process.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return Run(-9, out, err)


# --------------------------------------------------------------------------- checks
def doubled_writes(requests: list[dict[str, Any]]) -> list[str]:
    """Objects that got the same kind of successful write more than once in one phase. The record stamp (written
    as STAMP_FIELD_MANAGER) is not counted: a rerun writes it again, and so may a retry after a timeout whose write
    landed all the same, the same value, changing nothing."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for request in requests:
        if request["method"] in MUTATING and 200 <= int(request.get("status") or 0) < 300 \
                and not any(part in request["path"] for part in BOOKKEEPING) \
                and request.get("field_manager") != STAMP_FIELD_MANAGER:
            seen[(request["method"], request["path"], request.get("command", ""))] += 1
    return [f"{method} {path} ({command or 'no command'}) x{count}"
            for (method, path, command), count in sorted(seen.items()) if count > 1]


def lock_holder(kube: Any) -> str | None:
    lease = kube.get("Lease", NAMESPACE, "infra-orchestrator-lock")
    return None if lease is None else lease.get("spec", {}).get("holderIdentity")


def record_problems(checkout: Path, kube_env: Mapping[str, str], expected_status: str) -> list[str]:
    """The cluster record parses and has the phase's status, and the local mirror agrees with it."""
    from integrations import records
    from integrations.kubectl import Kubectl

    previous = Path.cwd()
    os.chdir(checkout)  # the record is named after the plan's path as the CLI spells it, relative to the checkout
    try:
        plan = load_plan(Path(PLAN_PATH))
        stored = records.read_cluster(Kubectl(cwd=plan.directory, timeout_s=30, env=kube_env), plan)
    except Exception as error:  # any failure to read is itself the finding
        return [f"cluster record unreadable: {error}"]
    finally:
        os.chdir(previous)
    if stored is None:
        return ["no record in the cluster"]
    problems = [] if stored.status == expected_status else [f"record status {stored.status!r}, not "
                                                            f"{expected_status!r}"]
    try:
        mirrored = records.read_mirror(load_plan(checkout / PLAN_PATH))
    except records.RecordUnreadable as error:
        return [*problems, f"the local mirror is unreadable: {error}"]
    if mirrored is None:
        problems.append("the local mirror is missing")
    elif mirrored.to_json() != stored.to_json():
        problems.append("the local mirror differs from the cluster record")
    return problems


# --------------------------------------------------------------------------- one phase, one seed
def run_phase(trial: Trial, rng: random.Random, flow: str, sandboxes: Sandboxes, pr: int, checkout: Path,
              env: Mapping[str, str]) -> list[Run]:
    """Trigger `flow` under the seed's faults until it succeeds (at most MAX_RUNS triggers), then clean up."""
    kube, label = sandboxes.kube, LABELS[flow]
    rules = random_faults(rng)
    for rule in rules:
        kube.faults.add(**rule)
        trial.events[f"fault {fault_kind(rule)}"] += 1
    runs: list[Run] = []
    sandboxes.label(pr, label)
    for attempt in range(MAX_RUNS):
        roll = rng.random()
        if attempt == 0 and roll < 0.3:
            trial.events["kill -9"] += 1
            runs.append(kill_after(start(flow, pr, checkout, env), rng.uniform(0.5, 8.0)))
        elif attempt == 0 and roll < 0.45:
            trial.events["concurrent trigger"] += 1
            both = [start(flow, pr, checkout, env) for _ in range(2)]
            runs += [finish(process) for process in both]
        elif attempt == 0 and roll < 0.6:
            trial.events["SIGTERM"] += 1
            runs.append(terminate_after(kube, start(flow, pr, checkout, env), rng.uniform(0.0, 3.0)))
        elif attempt == 0 and roll < 0.75:
            trial.events["SIGSTOP/SIGCONT"] += 1
            stopped = start(flow, pr, checkout, {**env, "INFRA_LEASE_SECONDS": str(STOPPED_LEASE_S)})
            runs += stop_while(kube, stopped, rng.uniform(0.0, 3.0),
                               lambda: [finish(start(flow, pr, checkout, env))])
        else:
            runs.append(finish(start(flow, pr, checkout, env)))
        if any(run.last_line == "succeeded" for run in runs[-2:]):
            break
        if not _has_label(sandboxes, pr, label):
            sandboxes.label(pr, label)  # a person triggers it again
    kube.faults.clear()
    if not any(run.last_line == "succeeded" for run in runs):
        trial.find("lost", f"{flow} never succeeded in {len(runs)} runs; last: {runs[-1].last_line!r} "
                           f"{_tail(runs[-1])}")
    for run in runs:
        if "Traceback" in run.stdout + run.stderr:
            trial.find("traceback", f"{flow}: {_tail(run, 'Traceback')}")
        if run.returncode is None:
            trial.find("hung", f"{flow}: a run did not finish in time")
    return runs


def _has_label(sandboxes: Sandboxes, pr: int, label: str) -> bool:
    return label in sandboxes.github.labels_of("acme/infra", pr)


def _tail(run: Run, marker: str | None = None) -> str:
    text = run.stderr + run.stdout
    if marker and marker in text:
        text = text[text.index(marker):]
        return " | ".join(text.strip().splitlines()[:1] + text.strip().splitlines()[-2:])
    return " | ".join(text.strip().splitlines()[-3:])


def run_seed(seed: int, prefect: Prefect, verbose: bool = False) -> Trial:
    trial = Trial(seed)
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"infra-chaos-{seed}-") as tmp_name:
        tmp = Path(tmp_name)
        sandboxes = Sandboxes(tmp).start()
        try:
            kube = sandboxes.kube
            kube.faults.seed(seed)
            seed_cluster(kube)
            checkout = tmp / "checkout"
            (checkout / PLAN_PATH).parent.mkdir(parents=True)
            (checkout / PLAN_PATH).write_text(PLAN)
            pr = sandboxes.open_pr({PLAN_PATH: PLAN})
            env = {**sandboxes.env(prefect), "INFRA_KUBECTL_TIMEOUT": f"{KUBECTL_TIMEOUT_S:g}"}
            prior = snapshot(kube)
            for flow, wanted, status in (("apply", planned(prior), "succeeded"), ("rollback", prior, "rolled-back")):
                since = kube.requests()[-1]["seq"] if kube.requests() else 0
                runs = run_phase(trial, rng, flow, sandboxes, pr, checkout, env)
                kube.settle()
                for difference in differences(wanted, snapshot(kube)):
                    trial.find("wrong final state", f"after {flow}: {difference}")
                for doubled in doubled_writes(kube.requests(since)):
                    trial.find("doubled", f"{flow}: {doubled}")
                holder = lock_holder(kube)
                if holder:
                    trial.find("stuck lock", f"after {flow}: held by {holder}")
                for problem in record_problems(checkout, sandboxes.kube_env, status):
                    trial.find("record", f"after {flow}: {problem}")
                if verbose:
                    for run in runs:
                        print(f"  seed {seed} {flow}: exit {run.returncode} {run.last_line!r}", file=sys.stderr)
        finally:
            sandboxes.stop()
    trial.seconds = time.monotonic() - started
    return trial


@contextmanager
def prefect_server() -> Iterator[Prefect]:
    with tempfile.TemporaryDirectory(prefix="infra-chaos-prefect-") as tmp:
        server = start_prefect(Path(tmp))
        try:
            yield server
        finally:
            server.stop()


CATEGORIES = ("wrong final state", "lost", "doubled", "stuck lock", "record", "traceback", "hung")


def report(trials: list[Trial]) -> str:
    findings: Counter[str] = Counter(finding.split(":", 1)[0] for trial in trials for finding in trial.findings)
    events: Counter[str] = sum((trial.events for trial in trials), Counter())
    lines = [f"chaos: {len(trials)} seeds ({trials[0].seed}..{trials[-1].seed}), "
             f"{sum(t.seconds for t in trials):.0f} s" if trials else "chaos: no seeds"]
    lines += [f"  {category:<18} {findings[category]}" for category in CATEGORIES]
    lines.append("  injected: " + ", ".join(f"{name} {count}" for name, count in sorted(events.items())))
    failing = [trial for trial in trials if trial.findings]
    lines.append(f"  seeds with findings: {', '.join(str(t.seed) for t in failing) or 'none'}")
    for trial in failing:
        lines += [f"    seed {trial.seed}: {finding}" for finding in trial.findings]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds to run (default 20)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--verbose", action="store_true", help="print every run's outcome to stderr")
    args = parser.parse_args()
    trials = []
    with prefect_server() as prefect:
        for seed in range(args.first, args.first + args.seeds):
            trial = run_seed(seed, prefect, args.verbose)
            trials.append(trial)
            print(f"seed {seed}: {len(trial.findings)} finding(s) in {trial.seconds:.1f} s", file=sys.stderr)
    print(report(trials))
    sys.exit(1 if any(trial.findings for trial in trials) else 0)


if __name__ == "__main__":
    main()
