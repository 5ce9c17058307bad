"""`infra-demo`: the whole lifecycle of the example plan against a local sandbox, for a newcomer.

Starts the sandbox Kubernetes API server and the GitHub test server on 127.0.0.1, seeds a cluster that matches
`ops/plans/infra-scale/prod/plan.yaml` and a pull request carrying that plan, then previews, applies (through the
real label gate) and rolls back with the real `infra-apply` / `infra-rollback` commands and real kubectl, and
prints replicas, container resources and HPA bounds before, after apply and after rollback. Nothing outside
127.0.0.1 and a temporary directory is touched. Exit 0 only if the rollback restored everything exactly.

The pieces (`Sandboxes`, `start_prefect`, `run_cli`) are reused by `bench/execution_bench.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.conventions import DEFAULT_PLAN, LABELS, Env, Flow
from core.k8s import Kind

REPO = "acme/infra"
ADMIN = "alice"
PLAN_PATH = DEFAULT_PLAN
PLAN_DIR = str(Path(PLAN_PATH).parent)
NAMESPACE = "assistant"
VENV_BIN = Path(sys.executable).parent
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
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command_for(name: str) -> list[str]:
    """The installed console script next to this interpreter, else the same entry point through `python -c`."""
    script = VENV_BIN / name
    if script.exists():
        return [str(script)]
    module = {"infra-apply": "cli.apply", "infra-rollback": "cli.rollback", "infra-plan": "cli.plan"}[name]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.argv[0] = {name!r}; main()"]


# --------------------------------------------------------------------------- Prefect
@dataclass
class Prefect:
    api_url: str
    home: str | None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {"PREFECT_API_URL": self.api_url, **QUIET}
        if self.home:
            env["PREFECT_HOME"] = self.home
        return env

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def launch_prefect(tmp: Path, ui: bool = False) -> Prefect:
    """Use $PREFECT_API_URL if set (unless `ui`); otherwise start `prefect server start` on a free 127.0.0.1 port
    with its own PREFECT_HOME under `tmp` (not waited for: call `wait_prefect`), serving its UI when `ui`. A fresh
    database costs most of the start-up."""
    existing = os.environ.get("PREFECT_API_URL")
    if existing and not ui:
        return Prefect(existing, os.environ.get("PREFECT_HOME"))
    home = tmp / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, **QUIET, "PREFECT_HOME": str(home),
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}  # the UI's pages ask this server, not :4200
    env.pop("PREFECT_API_URL", None)
    prefect = str(VENV_BIN / "prefect") if (VENV_BIN / "prefect").exists() else "prefect"
    with (tmp / "prefect-server.log").open("wb") as log:
        proc = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port),
                                 *(() if ui else ("--no-ui",))],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Prefect(f"http://127.0.0.1:{port}/api", str(home), proc, tmp / "prefect-server.log")


def wait_prefect(server: Prefect, timeout_s: float = 240) -> Prefect:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.proc.returncode}; see {server.log}")
        with contextlib.suppress(urllib.error.URLError, OSError), \
                urllib.request.urlopen(f"{server.api_url}/health", timeout=2) as response:
            if response.status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise TimeoutError(f"prefect server not ready after {timeout_s} s; see {server.log}")


def start_prefect(tmp: Path, timeout_s: float = 240) -> Prefect:
    return wait_prefect(launch_prefect(tmp), timeout_s)


# --------------------------------------------------------------------------- sandboxes
@dataclass
class Sandboxes:
    """The sandbox API server, the GitHub test server, and a kubectl environment isolated to them."""

    tmp: Path
    kube: Any = None
    github: Any = None
    kube_env: dict[str, str] = field(default_factory=dict)

    def start(self, rollout_delay: float = 0.05) -> Sandboxes:
        from sandbox.github.server import GitHubSandbox
        from sandbox.kube import SandboxServer

        self.kube = SandboxServer(host="127.0.0.1", port=0, rollout_delay=rollout_delay).start()
        self.github = GitHubSandbox("127.0.0.1", 0).start()
        home = self.tmp / "home"
        home.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.kube.write_kubeconfig(self.tmp / "kubeconfig")
        self.kube_env = {"KUBECONFIG": str(kubeconfig), "HOME": str(home),
                         "KUBECACHEDIR": str(self.tmp / "kubecache")}
        return self

    def stop(self) -> None:
        if self.github is not None:
            self.github.stop()
        if self.kube is not None:
            self.kube.stop()

    def open_pr(self, files: Mapping[str, str]) -> int:
        self.github.create_repo(REPO, files={"README.md": "# infra\n"})
        self.github.add_collaborator(REPO, ADMIN, "admin")
        return int(self.github.open_pr(REPO, head="infra-scale/prod", author=ADMIN, title="infra-scale: prod",
                                       files=dict(files)))

    def label(self, pr: int, label: str) -> None:
        self.github.add_label(REPO, pr, label, ADMIN)

    def env(self, prefect: Prefect) -> dict[str, str]:
        """Environment for a CLI subprocess: kubectl -> sandbox, GitHub -> test server, Prefect -> server."""
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "KUBECTL", "HOME", "XDG_CONFIG_HOME", Env.RECORD_KEY,
                Env.RECORD_KEYS_OLD, Env.RECORD_KEY_BLOCK)  # the record key: this process checks records too
        env = {key: os.environ[key] for key in keep if key in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        owner, name = REPO.split("/")
        env.update(self.kube_env, GITHUB_API_URL=self.github.url, GITHUB_TOKEN=self.github.token_for(ADMIN),
                   GH_OWNER=owner, GH_REPO=name, **prefect.env)
        # the sandbox gives kubectl a HOME of its own: the record key stays the one this process finds
        env.setdefault("XDG_CONFIG_HOME", os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config"))
        return env


def run_cli(flow: str, args: Sequence[str], cwd: Path, env: Mapping[str, str],
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    try:
        return _run(flow, args, cwd, env, timeout)
    finally:
        LAST_RUN_S[0] = time.monotonic() - started


LAST_RUN_S = [0.0]


def _run(flow: str, args: Sequence[str], cwd: Path, env: Mapping[str, str],
         timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command_for(f"infra-{flow}"), *args], cwd=cwd, env=dict(env), capture_output=True,
                          text=True, timeout=timeout, check=False)


def summary_of(stdout: str) -> dict[str, Any] | None:
    """The JSON summary inside the CLI's output (from the line `{` to the last line `}`)."""
    lines = stdout.splitlines()
    if "{" not in lines or "}" not in lines:
        return None
    start = lines.index("{")
    end = len(lines) - 1 - lines[::-1].index("}")
    document: dict[str, Any] = json.loads("\n".join(lines[start:end + 1]))
    return document


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
    from cli.help import CommandParser, Usage, documented

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
