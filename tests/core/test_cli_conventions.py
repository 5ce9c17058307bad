"""The commands' shared conventions, through the installed console scripts: one error format with "did you
mean" for a mistyped flag, help for every flag and only for flags the command has, `--execute` without a pull
request as bad input, a refused connection reported within seconds, and the GitHub sandbox's valid demo seed."""

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from core.plan import load_plan
from sandbox.github.state import GitHubState, seed_demo

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPTS = sorted(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "KUBECONFIG": "/dev/null", "KUBECTL": "false"}
REQUIRED = {"infra-sandbox": ("--kubeconfig=/dev/null",)}


def command(name: str, *args: str, env: dict[str, str] | None = None,
            cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env or CLEAN_ENV)


def options_of(help_text: str) -> dict[str, bool]:
    """{flag: has help text} from the `options:` section of --help."""
    section = help_text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    found: dict[str, bool] = {}
    for index, line in enumerate(section):
        if not line.startswith("  -"):
            continue
        spec, *text = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        described = bool(text) or (index + 1 < len(section) and section[index + 1].startswith(" " * 8))
        for flag in re.findall(r"(?:^|, )(--?[a-zA-Z][\w-]*)", spec):
            found[flag] = described
    return found


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_mistyped_flag_is_one_error_line_with_the_closest_flag(script: str) -> None:
    done = command(script, "--verison", *REQUIRED.get(script, ()))

    assert done.returncode == 2 and not done.stdout
    assert done.stderr == "error: arguments: --verison: unknown flag (did you mean --version?)\n"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_flag_value_has_the_same_format(script: str) -> None:
    flag = {"infra-demo": "--keep=yes", "infra-github-sandbox": "--seed=nope", "infra-sandbox": "--port=x",
            "infra-webhook": "--routes"}.get(script, "--output=xml")

    done = command(script, flag, *REQUIRED.get(script, ()))

    assert done.returncode == 2 and not done.stdout
    assert re.fullmatch(r"error: arguments: --?[a-z-]+: .+\n", done.stderr), done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_has_help_and_help_names_only_flags_the_command_has(script: str) -> None:
    text = command(script, "--help").stdout
    options = options_of(text)

    assert options and all(options.values()), {flag for flag, described in options.items() if not described}
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert mentioned <= set(options), mentioned - set(options)


@pytest.mark.parametrize("flow", ["apply", "rollback"])
@pytest.mark.parametrize("output", [[], ["-o", "json"]])
def test_execute_without_a_pull_request_is_bad_input(flow: str, output: list[str]) -> None:
    done = command(f"infra-{flow}", "--execute", *output)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("error: arguments: --pr: --execute needs a pull request: pass --pr=<number> or set "
                           "PRNUM\n")


def test_infra_plan_reports_a_refused_connection_within_five_seconds(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                          "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                          "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    started = time.monotonic()
    done = command("infra-plan", env={"PATH": "/usr/local/bin:/usr/bin:/bin", "KUBECONFIG": str(kubeconfig),
                                      "HOME": str(tmp_path)})

    assert time.monotonic() - started < 5
    assert done.returncode == 1 and done.stdout.splitlines()[-1] == "failed"
    assert "error: the cluster could not be reached" in done.stdout and "refused" in done.stdout


def test_the_github_sandbox_demo_seed_is_a_plan_the_validator_accepts(tmp_path: Path) -> None:
    state = GitHubState()
    seeded = seed_demo(state)
    plan = tmp_path / "plan.yaml"
    text = state.file_at(seeded["repo"], state.head_sha(seeded["repo"], seeded["pr"]), seeded["plan_path"])
    assert text is not None
    plan.write_bytes(text)

    loaded = load_plan(plan)

    assert [action.type for action in loaded.actions] == ["scale_workload"]
