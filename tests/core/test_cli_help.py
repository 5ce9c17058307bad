"""The commands' habits, through the installed console scripts: `--help` (examples, environment, exit codes),
`--version`, `-o json` alone on stdout, colour only on a terminal without NO_COLOR, and `--execute` without
GitHub settings refused before Prefect is even imported."""

import io
import json
import logging
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from cli.output import FinishedTasks, coloured, progress, rendered
from core.report import RunReport
from core.vocabulary import Outcome

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPTS = sorted(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
EXIT_CODE_LINE = re.compile(r"^  ([0-9])  \S", re.MULTILINE)
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "KUBECONFIG": "/dev/null", "KUBECTL": "false"}


def command(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=env or CLEAN_ENV)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_command_documents_examples_environment_and_exit_codes(script: str) -> None:
    helped = command(script, "--help")

    assert helped.returncode == 0, helped.stderr
    text = helped.stdout
    examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    assert all(line.strip().startswith(script) for line in examples.splitlines()), examples
    codes = EXIT_CODE_LINE.findall(text.split("exit codes:\n", 1)[1])
    assert codes[0] == "0" and len(codes) >= 2, text
    if script in ("infra-apply", "infra-rollback", "infra-scale"):
        assert codes == ["0", "1", "2"]
        assert "environment:\n" in text and "KUBECONFIG" in text and "GITHUB_TOKEN_BLOCK" in text
        assert "NO_COLOR" in text


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_comes_from_the_package_metadata(script: str) -> None:
    shown = command(script, "--version")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{script} {version('infra-orchestrator')}"


@pytest.mark.parametrize("flow", ["apply", "rollback"])
def test_the_documented_exit_codes_are_the_real_ones(flow: str) -> None:
    assert command(f"infra-{flow}").returncode == 0, "a preview succeeds"
    without_pr = command(f"infra-{flow}", "--execute")
    assert without_pr.returncode == 2 and not without_pr.stdout, "--execute without a PR is bad input"
    bad = command(f"infra-{flow}", "--plan=missing.yaml")
    assert bad.returncode == 2 and bad.stderr.startswith("error: missing.yaml: ") and not bad.stdout


@pytest.mark.parametrize("flag", [["-o", "json"], ["--output=json"]])
def test_json_output_is_the_summary_alone_on_stdout(flag: list[str]) -> None:
    done = command("infra-rollback", *flag)

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # the whole of stdout: no text line before or after
    assert document["ok"] is True and document["executed"] is False and document["outcome"] == "succeeded"
    assert [result["type"] for result in document["results"]][:1] == ["hint"]
    assert "note: label check not required in preview" in document["lines"]
    text = command("infra-rollback")
    assert text.stdout.splitlines()[-1] == "succeeded", "text stays the default"


def test_execute_without_github_settings_is_refused_before_prefect_is_imported() -> None:
    probe = ("import io, sys; from cli.main import run; err = io.StringIO(); "
             "code = run('apply', ['--execute', '--pr=7'], sys.stdout, err, {}); "
             "print(code, 'prefect' in sys.modules); print(err.getvalue(), end='')")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=CLEAN_ENV)

    first, error = done.stdout.split("\n", 1)
    assert first.split() == ["2", "False"], done.stdout + done.stderr
    assert error.startswith("error: environment: GH_OWNER: is required for --execute: set GH_OWNER and GH_REPO")
    assert "GITHUB_TOKEN_BLOCK" in error


def test_execute_names_only_the_missing_token() -> None:
    done = command("infra-rollback", "--execute", "--pr=7", env={**CLEAN_ENV, "GITHUB_REPOSITORY": "acme/infra"})

    assert done.returncode == 2 and not done.stdout
    assert done.stderr == ("error: environment: GITHUB_TOKEN: is required for --execute: set GITHUB_TOKEN (or "
                           "GITHUB_TOKEN_BLOCK, the name of a Prefect Secret block holding it)\n")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


REPORT = RunReport(("note: x",), {"ok": False, "executed": True, "namespace": "a", "results": []}, Outcome.FAILED)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert rendered(REPORT, "text", Terminal(), {}).endswith(coloured("failed", Outcome.FAILED, True))
    assert "\x1b[31m" in coloured("failed", Outcome.FAILED, True)
    assert rendered(REPORT, "text", Terminal(), {"NO_COLOR": "1"}) == REPORT.render()
    assert rendered(REPORT, "text", io.StringIO(), {}) == REPORT.render()
    assert "\x1b" not in rendered(REPORT, "json", Terminal(), {})


def finished_task_record(name: str, task: str, state: str) -> logging.LogRecord:
    record = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, f"Finished in state {state}()",
                               None, None)
    record.task_run_name, record.task_name = name, task
    return record


@pytest.mark.parametrize(("stream", "env", "expected"), [
    (Terminal(), {}, "step 1: scale deployment/web to 4: \x1b[32mCompleted\x1b[0m"),
    (Terminal(), {"NO_COLOR": "1"}, "step 1: scale deployment/web to 4: Completed"),
    (io.StringIO(), {}, None),
])
def test_progress_lines_only_on_a_terminal(stream: io.StringIO, env: dict[str, str], expected: str | None) -> None:
    logger = logging.getLogger("prefect.task_runs")
    with progress(stream, env):
        for handler in [handler for handler in logger.handlers if isinstance(handler, FinishedTasks)]:
            handler.handle(finished_task_record("step 1: scale deployment/web to 4", "execute_step", "Completed"))
            handler.handle(finished_task_record("load_plan-a1b", "load_plan", "Failed"))

    lines = stream.getvalue().splitlines()
    if expected is None:
        assert lines == []
        return
    assert lines[0].endswith(expected) and re.match(r"\[\s*\d+\.\d s\] ", lines[0]), lines
    assert lines[1].endswith("load plan: " + coloured("Failed", Outcome.FAILED, not env)), "generated names: the task's"


SOURCE_DIRS = ("core", "cli", "flows", "tasks", "integrations", "deployments")


def test_troubleshooting_quotes_ten_messages_the_code_prints() -> None:
    """Each `**Message:**` of docs/troubleshooting.md, split at `…` (what varies), is literally in the code."""
    quoted = re.findall(r"^\*\*Message:\*\* `([^`]+)`$", (REPO / "docs" / "troubleshooting.md").read_text(),
                        re.MULTILINE)
    code = "\n".join(path.read_text() for folder in SOURCE_DIRS for path in (REPO / folder).rglob("*.py"))

    assert len(quoted) == 10, quoted
    for message in quoted:
        pieces = [piece.strip() for piece in message.split("…") if len(piece.strip()) >= 6]
        assert pieces, message
        missing = [piece for piece in pieces if piece not in code]
        assert not missing, f"{message!r}: not in the code: {missing}"
