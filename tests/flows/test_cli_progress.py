"""`--execute` on a terminal: a line on stderr for each finished task while the run goes on, through a real pty
and the session's Prefect server (the formatting itself is unit-tested in tests/core/test_cli_help.py)."""

import os
import pty
import re
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"^\[\s*\d+\.\d s\] (.+): (?:\x1b\[\d+m)?(\w+)", re.MULTILINE)


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_terminal_sees_each_finished_task_as_it_happens(prefect_env: dict[str, str]) -> None:
    env = {"PATH": os.environ["PATH"], "KUBECONFIG": "/dev/null", "KUBECTL": "false", **prefect_env,
           "GH_OWNER": "acme", "GH_REPO": "infra", "GITHUB_TOKEN": "t0ken-value", "GITHUB_RETRIES": "0",
           "GITHUB_API_URL": f"http://127.0.0.1:{dead_port()}"}  # the gate cannot ask GitHub: it refuses
    controller, terminal = pty.openpty()
    try:
        run = subprocess.Popen([str(Path(sys.executable).parent / "infra-apply"), "--execute", "--pr=5"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=terminal, text=True)
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the pty closes with the process: EIO
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = run.communicate(timeout=120)
    finally:
        os.close(controller)

    assert run.returncode == 0 and stdout.splitlines()[-1] == "skipped", stdout
    finished = PROGRESS.findall(seen.decode().replace("\r\n", "\n"))
    names = [name for name, _ in finished]
    assert names[:2] == ["load plan", "verify label"], seen.decode()
    assert all(state == "Completed" for _, state in finished)
    assert "\x1b[32mCompleted" in seen.decode(), "coloured on a terminal"
    assert not PROGRESS.search(stdout), "progress goes to stderr only"
