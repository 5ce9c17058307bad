"""The harness the demo, the benches and the chaos runs share: the sandbox Kubernetes API server and the GitHub
test server on 127.0.0.1 with a kubectl environment isolated to them, a Prefect server, and the console scripts
run as subprocesses against them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.conventions import Env

REPO = "acme/infra"
ADMIN = "alice"
VENV_BIN = Path(sys.executable).parent
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
