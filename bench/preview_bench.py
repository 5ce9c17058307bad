"""Benchmark the CLI preview (issue 2, Measure): wall time of `infra-apply --plan=...` and `infra-rollback
--plan=...` as subprocesses, median of N (default 5), for the example plan and generated plans of 1,000 and
10,000 actions.

Targets on this machine: <= 0.3 s for the example (issue 12; issue 2 asked 0.5 s), <= 3 s for 10,000 actions,
growing linearly. The project's bytecode is compiled first, as an installed package has it: this machine sets
PYTHONDONTWRITEBYTECODE=1, under which an editable checkout recompiles every changed module on every run. The machine is
shared and noisy, so the same run also measures interpreter start-up baselines (`python -c pass` and
`python -c "import yaml"`) and prints every figure as a ratio against them too.

The rollback preview looks up the apply record in the cluster first; the benchmark sets `KUBECTL=true`, so that
lookup is one `true` process that answers nothing (no record) instead of a network timeout.

    .venv/bin/python bench/preview_bench.py [--runs 5] [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "ops/plans/infra-scale/prod/plan.yaml"
VENV_BIN = Path(sys.executable).parent
PACKAGES = ("cli", "core", "integrations", "flows", "tasks")


def compile_project() -> str:
    """Compile the project's bytecode, as an installed package has it (PYTHONDONTWRITEBYTECODE=1 here would
    otherwise make every run recompile every changed module); returns a line saying so."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(ROOT / package) for package in PACKAGES)],
                   check=True)
    return (f"bytecode of {', '.join(PACKAGES)} compiled first (PYTHONDONTWRITEBYTECODE="
            f"{os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')} here)")
EXAMPLE_TARGET_S = 0.3


def generated_plan(directory: Path, actions: int) -> Path:
    """A valid plan with `actions` actions cycling scale / resources / HPA over distinct deployments."""
    lines = ["namespace: bench", "target: prod", "actions:"]
    for index in range(actions):
        name = f"app-{index // 3:05d}"
        kind = index % 3
        if kind == 0:
            lines.append(f"  - {{type: scale_workload, name: {name}, replicas: {2 + index % 5}}}")
        elif kind == 1:
            lines.append(f"  - {{type: update_resources, name: {name}, container: app, "
                         f"requests: {{cpu: 100m, memory: 128Mi}}, limits: {{cpu: 500m, memory: 256Mi}}}}")
        else:
            lines.append(f"  - {{type: apply_hpa, name: {name}, minReplicas: 2, maxReplicas: 6, "
                         f"targetCPUUtilizationPercentage: 70}}")
    path = directory / f"plan-{actions}" / "plan.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(command: list[str], env: dict[str, str], runs: int, check_last: str | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - started)
        if completed.returncode != 0 or (check_last and completed.stdout.splitlines()[-1:] != [check_last]):
            raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}):\n"
                             f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000", help="generated plan sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "KUBECONFIG"))}
    env["KUBECTL"] = "true"
    python = sys.executable
    apply = [str(VENV_BIN / "infra-apply")]
    rollback = [str(VENV_BIN / "infra-rollback")]

    print(f"CLI preview wall time, median of {args.runs} (subprocess; rollback with KUBECTL=true so the "
          f"cluster-record lookup answers 'no record' at once)")
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(compile_project())
    with tempfile.TemporaryDirectory(prefix="preview-bench-") as tmp:
        plans: list[tuple[str, int, Path]] = [("example", 3, EXAMPLE)]
        for size in sizes:
            plans.append((f"{size:,} actions", size, generated_plan(Path(tmp), size)))

        bare = statistics.median(timed([python, "-c", "pass"], env, args.runs))
        with_yaml = statistics.median(timed([python, "-c", "import yaml"], env, args.runs))
        print(f"\nbaseline (same run): python -c pass {bare:.3f} s; python -c 'import yaml' {with_yaml:.3f} s")

        header = f"{'plan':<16}{'flow':<10}{'median s':>10}{'min s':>8}{'max s':>8}{'x yaml':>8}{'target':>10}"
        print("\n" + header + "\n" + "-" * len(header))
        medians: dict[tuple[str, int], float] = {}
        for label, count, path in plans:
            for flow, command in (("apply", apply), ("rollback", rollback)):
                times = timed([*command, f"--plan={path}"], {**env}, args.runs, check_last="succeeded")
                median = statistics.median(times)
                medians[(flow, count)] = median
                limit = EXAMPLE_TARGET_S if count == 3 else (3.0 if count == 10_000 else None)
                target = f"<= {limit:g} s" if limit is not None else ""
                verdict = "" if limit is None else (" ok" if median <= limit else " MISS")
                print(f"{label:<16}{flow:<10}{median:>10.3f}{min(times):>8.3f}{max(times):>8.3f}"
                      f"{median / with_yaml:>8.1f}{target:>10}{verdict}")

        print("\ngrowth per action (linearity): (median(N) - median(example)) / (N - 3)")
        for flow in ("apply", "rollback"):
            parts = []
            for size in sizes:
                per = (medians[(flow, size)] - medians[(flow, 3)]) / (size - 3) * 1e6
                parts.append(f"{size:,}: {per:.0f} us/action")
            if len(sizes) >= 2:
                small, large = sizes[0], sizes[-1]
                ratio = (medians[(flow, large)] - medians[(flow, 3)]) / max(
                    medians[(flow, small)] - medians[(flow, 3)], 1e-9)
                parts.append(f"time above example grows {ratio:.1f}x for {large / small:.0f}x the actions")
            print(f"  {flow:<9}" + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
