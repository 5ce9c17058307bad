"""A console script's process ends with its command's exit code, after every exit hook the command registered
(as Prefect's services and a temporary server's stop are), with its output flushed (integrations/process.py)."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading
from integrations.process import run_and_exit

def command():
    atexit.register(print, "atexit hook ran")
    getattr(threading, "_register_atexit")(print, "threading hook ran")
    sys.stdout.write("outcome, no newline")
    {body}

run_and_exit(command)
"""


def run_script(body: str) -> subprocess.CompletedProcess[str]:
    """The script as a console script runs: stdout a pipe, so block-buffered (without PYTHONUNBUFFERED)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", SCRIPT.format(body=body)], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_command_s_code_once_every_hook_it_registered_has_run(code: int) -> None:
    ended = run_script(f"return {code}")

    assert ended.returncode == code, ended.stderr
    assert ended.stdout == "outcome, no newlinethreading hook ran\natexit hook ran\n"
    assert ended.stderr == ""


def test_a_command_that_raises_ends_as_python_ends_it() -> None:
    ended = run_script("raise RuntimeError('boom')")

    assert ended.returncode == 1
    assert "Traceback" in ended.stderr and "RuntimeError: boom" in ended.stderr
    assert ended.stdout.endswith("atexit hook ran\n")


def test_a_command_that_leaves_at_once_skips_the_exit_hooks_with_its_code() -> None:
    """As after a run whose Prefect server went away: its services' exit hooks would wait for it forever."""
    ended = run_script("from integrations.process import leave_at_once\n"
                       "    threading._register_atexit(__import__('time').sleep, 600)\n"
                       "    leave_at_once()\n"
                       "    return 3")

    assert ended.returncode == 3, ended.stderr
    assert ended.stdout == "outcome, no newline"
    assert ended.stderr == ""
