"""`infra-demo`: the whole lifecycle of the example plan against a local sandbox, for a newcomer.

Starts the sandbox Kubernetes API server and the GitHub test server on 127.0.0.1, seeds a cluster that matches
`ops/plans/infra-scale/prod/plan.yaml` and a pull request carrying that plan, then previews, applies (through the
real label gate) and rolls back with the real `infra-apply` / `infra-rollback` commands and real kubectl, and
prints replicas, container resources and HPA bounds before, after apply and after rollback. Nothing outside
127.0.0.1 and a temporary directory is touched. Exit 0 only if the rollback restored everything exactly.

Its servers and subprocesses come from the harness the benches use too (sandbox/harness.py).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core.conventions import DEFAULT_PLAN, LABELS, Flow
from core.k8s import Kind
from sandbox.harness import (
    ADMIN,
    LAST_RUN_S,
    REPO,
    Prefect,
    Sandboxes,
    launch_prefect,
    run_cli,
    summary_of,
    wait_prefect,
)

PLAN_PATH = DEFAULT_PLAN
PLAN_DIR = str(Path(PLAN_PATH).parent)
NAMESPACE = "assistant"
EXAMPLE_DIR = Path(__file__).resolve().parents[1] / PLAN_DIR

# Used when the package is installed without the repository's ops/ directory (same content as the example).
FALLBACK_PLAN = """\
namespace: assistant
target: prod
actions:
  - type: scale_workload
    name: web
    replicas: 4
    reason: evening traffic peak
  - type: update_resources
    name: api
    container: app
    requests: {cpu: 250m, memory: 256Mi}
    limits: {cpu: "1", memory: 512Mi}
  - type: apply_hpa
    name: web
    minReplicas: 3
    maxReplicas: 8
    targetCPUUtilizationPercentage: 70
rollbackHints:
  - previous-hpa.yaml
  - kubectl rollout undo deployment/web -n assistant
  - kubectl rollout undo deployment/api -n assistant
"""
FALLBACK_HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: assistant
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: 2
  maxReplicas: 6
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 80
"""
APP_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


# --------------------------------------------------------------------------- the demo itself
def _snapshot(kube: Any) -> dict[str, Any]:
    """What the plan touches, as the cluster has it: replicas, templates (resources), the HPA spec."""
    state: dict[str, Any] = {}
    for name in ("web", "api"):
        deployment = kube.get("Deployment", NAMESPACE, name)
        state[name] = None if deployment is None else {
            "replicas": deployment["spec"].get("replicas"),
            "template": deployment["spec"]["template"],
        }
    hpa = kube.get(Kind.HPA, NAMESPACE, "web")
    state["hpa"] = None if hpa is None else hpa["spec"]
    return state


def _resources(state: dict[str, Any], name: str) -> str:
    if state[name] is None:
        return "(absent)"
    containers = state[name]["template"]["spec"]["containers"]
    app: dict[str, Any] = next((c for c in containers if c.get("name") == "app"), {})
    res = app.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    return (f"req {req.get('cpu', '-')}/{req.get('memory', '-')} "
            f"lim {lim.get('cpu', '-')}/{lim.get('memory', '-')}")


def _rows(state: dict[str, Any]) -> list[str]:
    hpa = state["hpa"]
    return [
        str(state["web"]["replicas"]) if state["web"] else "(absent)",
        str(state["api"]["replicas"]) if state["api"] else "(absent)",
        _resources(state, "web"),
        _resources(state, "api"),
        "(none)" if hpa is None else f"min {hpa.get('minReplicas')} max {hpa.get('maxReplicas')}",
    ]


def render_table(before: dict[str, Any], applied: dict[str, Any], rolled: dict[str, Any]) -> str:
    labels = ["web replicas", "api replicas", "web app resources", "api app resources", "HPA web"]
    columns = [["", *labels], ["before", *_rows(before)], ["after apply", *_rows(applied)],
               ["after rollback", *_rows(rolled)]]
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = []
    for index in range(len(columns[0])):
        lines.append("  ".join(column[index].ljust(width) for column, width in zip(columns, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in before:
        if key == "hpa":
            if before[key] != after[key]:
                out.append("HPA web spec")
            continue
        if before[key] is None or after[key] is None:
            if before[key] != after[key]:
                out.append(f"deployment {key} presence")
            continue
        if before[key]["replicas"] != after[key]["replicas"]:
            out.append(f"{key} replicas {before[key]['replicas']} -> {after[key]['replicas']}")
        if before[key]["template"] != after[key]["template"]:
            out.append(f"{key} pod template")
    return out


def _contract_lines(stdout: str) -> list[str]:
    """The lines a reader needs: preview/note/refusal lines, one line per executed step, the outcome."""
    lines = [line for line in stdout.splitlines()
             if line.startswith(("preview:", "note:", "Refusing", "error:"))]
    document = summary_of(stdout)
    if document and document.get("executed"):
        for result in document.get("results", []):
            extra = f" ({result['error']})" if result.get("error") else ""
            lines.append(f"{result.get('status', '?'):>9}  {result.get('command', '')}{extra}")
    last = stdout.splitlines()[-1] if stdout.strip() else "(no output)"
    lines.append(f"=> {last}")
    return lines


def _show(title: str, completed: subprocess.CompletedProcess[str]) -> None:
    print(f"\n$ {title}    ({LAST_RUN_S[0]:.1f} s)")
    for line in _contract_lines(completed.stdout):
        print(f"  {line}")
    if completed.returncode != 0:
        print(f"  (exit {completed.returncode}) stderr tail:")
        for line in completed.stderr.strip().splitlines()[-15:]:
            print(f"    {line}")


def _copy_example(checkout: Path) -> dict[str, str]:
    target = checkout / PLAN_DIR
    target.mkdir(parents=True)
    if (EXAMPLE_DIR / "plan.yaml").is_file():
        for path in EXAMPLE_DIR.iterdir():
            if path.is_file() and path.name != "plan.record.json":
                shutil.copy2(path, target / path.name)
    else:
        (target / "plan.yaml").write_text(FALLBACK_PLAN)
        (target / "previous-hpa.yaml").write_text(FALLBACK_HPA)
    return {f"{PLAN_DIR}/{path.name}": path.read_text() for path in sorted(target.iterdir()) if path.is_file()}


def seed_world(sandboxes: Sandboxes, tmp: Path) -> tuple[Any, Path, int]:
    """The demo's world: the cluster the example plan expects, a checkout of the plan under `tmp`, and a pull
    request carrying it. Returns the sandbox cluster, the checkout and the PR's number."""
    kube = sandboxes.kube
    print(f"\nsandbox Kubernetes API: {kube.url}   GitHub test server: {sandboxes.github.url}")
    kube.create_namespace(NAMESPACE)
    for name, replicas in (("web", 2), ("api", 2)):
        kube.create_deployment(NAMESPACE, name, replicas=replicas, containers=[
            {"name": "app", "image": f"assistant/{name}:1.0", "resources": APP_RESOURCES}])
    kube.create_hpa(NAMESPACE, "web", "web", 2, 6)  # as previous-hpa.yaml describes it
    kube.settle()
    checkout = tmp / "checkout"
    files = _copy_example(checkout)
    pr = sandboxes.open_pr(files)
    print(f"seeded: namespace {NAMESPACE} (deployments web, api; HPA web min 2 max 6), "
          f"PR #{pr} in {REPO} carrying {PLAN_PATH}")
    print("note: HPA web manages deployment web's replicas; the plan scales web *and* changes that HPA "
          "(min 3 max 8), so apply allows the scale")
    print(f"plan copied to {checkout / PLAN_DIR} (records are written there, not in your checkout)")
    return kube, checkout, pr


@contextlib.contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="infra-demo-"))
    try:
        yield tmp
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def demo(keep: bool = False) -> int:
    print("infra-demo: runs the example plan against a LOCAL SANDBOX only: a sandbox Kubernetes API server and a")
    print("GitHub test server on 127.0.0.1, a temporary directory, and (unless PREFECT_API_URL is set) a local")
    print("Prefect server. No real cluster, no real GitHub, nothing outside 127.0.0.1 is touched.")
    started = time.monotonic()
    with _workspace(keep) as tmp:
        prefect = launch_prefect(tmp)  # starts in the background while the sandboxes are seeded
        sandboxes = Sandboxes(tmp)
        try:
            kube, checkout, pr = seed_world(sandboxes.start(), tmp)
            plan_arg = f"--plan={PLAN_PATH}"
            env_preview = {key: value for key, value in sandboxes.env(Prefect("", None)).items()
                           if not key.startswith("PREFECT_")}

            _show(f"infra-apply {plan_arg}", run_cli("apply", [plan_arg], checkout, env_preview))
            _show(f"infra-rollback {plan_arg}", run_cli("rollback", [plan_arg], checkout, env_preview))

            where = "$PREFECT_API_URL" if prefect.proc is None else "a local `prefect server start` (fresh database)"
            print(f"\nwaiting for Prefect: {where} ...")
            wait_prefect(prefect)
            print(f"Prefect API: {prefect.api_url} (ready {time.monotonic() - started:.1f} s after the demo started)")
            env = sandboxes.env(prefect)
            before = _snapshot(kube)

            sandboxes.label(pr, LABELS[Flow.APPLY])
            print(f"\nlabel {LABELS[Flow.APPLY]} added to PR #{pr} by {ADMIN} (admin)")
            applied = run_cli("apply", ["--execute", f"--pr={pr}", plan_arg], checkout, env)
            _show(f"infra-apply --execute --pr={pr} {plan_arg}", applied)
            kube.settle()
            after_apply = _snapshot(kube)

            sandboxes.label(pr, LABELS[Flow.ROLLBACK])
            print(f"\nlabel {LABELS[Flow.ROLLBACK]} added to PR #{pr} by {ADMIN} (admin)")
            rolled = run_cli("rollback", ["--execute", f"--pr={pr}", plan_arg], checkout, env)
            _show(f"infra-rollback --execute --pr={pr} {plan_arg}", rolled)
            kube.settle()
            after_rollback = _snapshot(kube)
        finally:
            prefect.stop()
            sandboxes.stop()

        print("\n" + render_table(before, after_apply, after_rollback))
        changed = differences(before, after_apply)
        remaining = differences(before, after_rollback)
        print()
        print(f"apply changed: {', '.join(changed) if changed else 'nothing (unexpected)'}")
        if remaining:
            print(f"rollback did NOT restore: {', '.join(remaining)}")
        else:
            print("rollback restored everything exactly (replicas, pod templates incl. resources, HPA spec)")
        ok = applied.returncode == 0 and rolled.returncode == 0 and bool(changed) and not remaining
        print(f"\ndemo {'succeeded' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s"
              + (f"; files kept in {tmp}" if keep else ""))
        return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    from integrations.command_help import CommandParser, Usage, documented

    parser = CommandParser(prog="infra-demo", allow_abbrev=False,
                           description=__doc__.splitlines()[0] if __doc__ else None)
    documented(parser, Usage(
        examples=("infra-demo", "infra-demo --keep    # keep the temporary directory: records, logs, the plan"),
        environment=(("PREFECT_API_URL", "a Prefect server to record the demo's runs on (unset: the demo starts "
                                         "a local one)"),
                     ("KUBECTL", "the kubectl binary (default kubectl)")),
        exit_codes=(("0", "the rollback restored everything apply changed"),
                    ("1", "apply or rollback failed, or something was not restored"), ("2", "bad flags"))))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (plan records, logs)")
    args = parser.parse_args(argv)
    sys.exit(demo(keep=args.keep))


if __name__ == "__main__":
    main()
