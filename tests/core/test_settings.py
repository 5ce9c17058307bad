"""The run's settings reach every kubectl it starts: INFRA_KUBECTL_TIMEOUT bounds each call (its
`--request-timeout`, one second under the call's limit) on every path that builds a kubectl runner, and a
setting that is not a number is bad input."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.desired import desired_from
from core.errors import InputError
from core.plan import load_plan
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAN = "ops/plans/infra-scale/prod/plan.yaml"
FAKE_KUBECTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$KUBECTL_LOG"
echo '{"apiVersion": "v1", "kind": "List", "items": []}'
"""


@pytest.fixture
def kubectl_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubectl that logs its arguments and lists nothing, set as KUBECTL with INFRA_KUBECTL_TIMEOUT=3."""
    binary = tmp_path / "kubectl"
    binary.write_text(FAKE_KUBECTL)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("KUBECTL", str(binary))
    monkeypatch.setenv("KUBECTL_LOG", str(log))
    monkeypatch.setenv("INFRA_KUBECTL_TIMEOUT", "3")
    monkeypatch.setenv("KUBECONFIG", "/dev/null")
    return log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("command", [
    ("infra-apply", f"--plan={PLAN}"),
    ("infra-rollback", f"--plan={PLAN}"),
    ("infra-plan", f"--plan={PLAN}"),
    ("infra-scale", "--desired=ops/desired/prod.yaml"),
], ids=lambda command: command[0])
def test_every_cli_kubectl_call_is_bounded_by_the_setting(command: tuple[str, ...], kubectl_log: Path) -> None:
    subprocess.run([str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=60,
                   env={**os.environ, "PATH": "/usr/bin:/bin"})

    assert calls(kubectl_log)
    assert all("--request-timeout=2s" in call.split() for call in calls(kubectl_log)), calls(kubectl_log)


def test_the_flows_kubectl_calls_are_bounded_by_the_setting(kubectl_log: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.kube import kubectl_for
    from tasks.scale import read_live_state

    monkeypatch.chdir(REPO)
    read_live_state.fn(desired_from("ops/desired/prod.yaml", None, None, ()))

    assert kubectl_for(load_plan(Path(PLAN))).timeout_s == 3
    assert calls(kubectl_log) and all("--request-timeout=2s" in call.split() for call in calls(kubectl_log))


@pytest.mark.parametrize("name, value", [("INFRA_KUBECTL_TIMEOUT", "soon"), ("INFRA_KUBECTL_TIMEOUT", "0"),
                                         ("INFRA_KUBECTL_TIMEOUT", "nan"), ("INFRA_MAX_PARALLEL_STEPS", "0"),
                                         ("INFRA_MAX_PARALLEL_STEPS", "four")])
def test_a_setting_that_is_not_one_is_bad_input(name: str, value: str) -> None:
    with pytest.raises(InputError, match=f"^environment: {name}: "):
        Settings.from_env({name: value})


def test_a_bad_timeout_is_one_error_line_and_exit_2(kubectl_log: Path) -> None:
    done = subprocess.run([str(BIN / "infra-apply"), f"--plan={PLAN}"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "INFRA_KUBECTL_TIMEOUT": "soon"})

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("error: environment: INFRA_KUBECTL_TIMEOUT: 'soon' is not a positive number of "
                           "seconds\n")
    assert not calls(kubectl_log)
