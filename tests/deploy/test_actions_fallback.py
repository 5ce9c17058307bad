"""The GitHub Actions fallback (.github/workflows/infra-label.yml): safe by construction (no head checkout, secrets
only in the step that uses them, a Prefect client pinned by hash, the base branch's own code only), and its script
really starts the deployment of each plan the PR changes (chosen as the webhook bridge chooses, never from the
head branch's name) on a Prefect server, pinned to the head SHA the labeled event carried."""

from __future__ import annotations

import os
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import REPO_ROOT, Deployed
from tests.fixtures.github import GitHubPR
from tests.fixtures.prefect_server import VENV_BIN

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "infra-label.yml"
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"
SECRET_RE = re.compile(r"\$\{\{\s*secrets\.")


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def the_job() -> dict[str, Any]:
    (job,) = workflow()["jobs"].values()
    assert isinstance(job, dict)
    return job


def step_running(command: str) -> dict[str, Any]:
    (step,) = [step for step in the_job()["steps"] if command in step.get("run", "")]
    assert isinstance(step, dict)
    return step


def start_step() -> dict[str, Any]:
    return step_running("deployment run")


def fetch_step() -> dict[str, Any]:
    return step_running("/tarball/")


def pinned_requirements() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes), from the requirements the install step writes and installs."""
    run = step_running("--require-hashes").get("run", "")
    written = re.search(r'cat > "(?P<file>[^"]+)" <<\'REQUIREMENTS\'\n(?P<text>.*?)\nREQUIREMENTS\n', run, re.S)
    assert written, "the install step writes no requirements file"
    installs = re.findall(r"pip\" install [^\n]*--require-hashes[^\n]*\\\n\s*(.*)", run)
    assert installs and f'-r "{written["file"]}"' in installs[0], "pip does not install that file --require-hashes"
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in written["text"].splitlines():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?: --hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"not pinned with a hash: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{name} pinned twice"
        pins[name] = (match[2], re.findall(r"[0-9a-f]{64}", match[3]))
    return pins


def test_trigger_is_pull_request_target_labeled_or_changed_only() -> None:
    data = workflow()
    triggers = data[True] if True in data else data["on"]  # YAML 1.1 reads the key `on` as True
    assert triggers == {"pull_request_target": {"types": ["labeled", "opened", "synchronize", "reopened"]}}
    assert data["permissions"] == {}


def test_never_checks_out_or_runs_the_pr_head() -> None:
    text = WORKFLOW.read_text()
    (job,) = workflow()["jobs"].values()
    assert "execute-plan" in job["if"] and "rollback-plan" in job["if"]
    assert "head.repo.full_name == github.repository" in job["if"]
    for step in job["steps"]:
        assert "uses" not in step, "no actions at all: nothing that could check out or run the head"
        run = step.get("run", "")
        assert "${{" not in run, f"expression interpolated into a script: {run[:200]}"
        assert "git " not in run and "checkout" not in run
    assert "actions/checkout" not in text and "refs/pull" not in text
    # the head SHA is data for the gate (an env value, validated), never something fetched
    assert re.findall(r".*head\.sha.*", text) == ["          HEAD_SHA: ${{ github.event.pull_request.head.sha }}"]
    assert start_step()["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"


def test_secrets_are_only_in_the_env_of_the_step_that_uses_them() -> None:
    data, job = workflow(), the_job()
    assert "env" not in data and "env" not in job, "no workflow- or job-level env: every step would see it"
    holders = [step["name"] for step in job["steps"]
               if any(SECRET_RE.search(str(v)) for v in (step.get("env") or {}).values())]  # fmt: skip
    assert holders == [start_step()["name"]]
    in_step_env = sum(len(SECRET_RE.findall(str(v))) for v in start_step()["env"].values())
    assert in_step_env == len(SECRET_RE.findall(WORKFLOW.read_text())) == 3, "a secret is referenced elsewhere"
    assert not SECRET_RE.search(json_of_everything_but_step_envs(data))


def json_of_everything_but_step_envs(data: dict[Any, Any]) -> str:
    import json

    stripped = {**data, "jobs": {name: {**job, "steps": [{k: v for k, v in step.items() if k != "env"}
                                                        for step in job["steps"]]}
                                 for name, job in data["jobs"].items()}}  # fmt: skip
    return json.dumps(stripped, default=str)


def test_the_prefect_client_is_pinned_by_hash_with_its_whole_dependency_tree() -> None:
    install = step_running("--require-hashes")
    assert "env" not in install, "the install step needs no env, least of all secrets"
    assert "--only-binary=:all:" in install["run"], "an sdist would run its build code at install time"
    pins = pinned_requirements()
    # the client is the version the project (and so its Prefect server) runs
    assert pins["prefect"][0] == metadata.version("prefect")
    # pip --require-hashes refuses any dependency the file lacks: walk prefect's requirements (as installed here)
    # for the runner's Python 3.12 on Linux and find each one pinned
    environment = {key: str(value) for key, value in default_environment().items()} | {
        "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
        "platform_system": "Linux", "extra": ""}  # fmt: skip
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    missing: set[str] = set()
    todo, seen = ["prefect"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in pins:
                missing.add(dependency)
            elif dependency in installed:
                todo.append(dependency)
    assert not missing, f"dependencies without a pinned hash: {sorted(missing)}"
    assert len(pins) >= len(seen)


def run_script(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The start step's script, as the runner runs it after the install and fetch steps: the Prefect client's
    environment at $RUNNER_TEMP/prefect (here the project's), the base branch's code at $RUNNER_TEMP/base."""
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir(exist_ok=True)
    for name, target in (("prefect", VENV_BIN.parent), ("base", REPO_ROOT)):
        if not (runner_temp / name).exists():
            (runner_temp / name).symlink_to(target, target_is_directory=True)
    script = start_step()["run"]
    return subprocess.run(["bash", "-c", script], env={**env, "RUNNER_TEMP": str(runner_temp)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("PR_NUMBER", "7 -p execute=false", "unexpected pull request number"),
        ("HEAD_SHA", HEAD_SHA + " -p execute=false", "unexpected head SHA"),
        ("HEAD_SHA", HEAD_SHA.upper(), "unexpected head SHA"),
        ("HEAD_SHA", "", "unexpected head SHA"),
    ],
)
def test_script_refuses_a_bad_pr_number_or_head_sha(field: str, value: str, message: str, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "ACTION": "labeled", "LABEL": "rollback-plan", "PR_NUMBER": "7",
           "HEAD_SHA": HEAD_SHA, "REPOSITORY": "acme/infra", "PREFECT_API_URL": "http://127.0.0.1:9/api",
           field: value}  # fmt: skip
    done = run_script(env, tmp_path)
    assert done.returncode == 1 and message in done.stdout


def test_a_label_starts_the_deployment_of_the_plan_the_pr_changes_not_of_its_branch_name(
        deployed: Deployed, github_pr: GitHubPR, tmp_path: Path) -> None:
    """Issue 25: the branch says prod, the PR changes staging's plan: staging's deployment runs that plan (the
    branch name used to choose infra-rollback/prod and prod's plan, which the PR does not change)."""
    server, github = deployed.server, github_pr.server
    staging_plan = "ops/plans/infra-scale/staging/plan.yaml"
    number = github.open_pr(github_pr.repo, head="infra-scale/prod/nightly", author="alice",
                            files={staging_plan: github_pr.plan_text.replace("prod", "staging")})
    deployments = {name: server.deployment("infra-rollback", name) for name in ("prod", "staging")}
    known = {r["id"] for dep in deployments.values() for r in server.flow_runs(dep["id"])}
    env = {**plan_env(github_pr, PR_NUMBER=str(number), HEAD_SHA=HEAD_SHA), **server.env, "ACTION": "labeled",
           "LABEL": "rollback-plan", "HEAD_REF": "infra-scale/prod/nightly"}  # given, yet never to be read
    done = run_script(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    new = {name: [r for r in server.flow_runs(dep["id"]) if r["id"] not in known]
           for name, dep in deployments.items()}  # fmt: skip
    try:
        assert new["prod"] == [] and len(new["staging"]) == 1, done.stdout
        run = new["staging"][0]
        assert run["parameters"] == {**run["parameters"], "pr": number, "execute": True, "head_sha": HEAD_SHA,
                                     "plan": staging_plan}  # fmt: skip
        assert "github-actions" in run["tags"]
    finally:  # no worker may pick it up later in the session
        for run in new["prod"] + new["staging"]:
            server.api("DELETE", f"/flow_runs/{run['id']}")


def plan_env(github_pr: GitHubPR, **extra: str) -> dict[str, str]:
    """The step's environment for a `synchronize` of the GitHub test server's PR (whose token lists its files)."""
    return {"PATH": os.environ["PATH"], "ACTION": "synchronize", "LABEL": "", "PR_NUMBER": str(github_pr.number),
            "HEAD_SHA": github_pr.head_sha, "REPOSITORY": github_pr.repo,
            "GITHUB_API": github_pr.server.url, "GITHUB_TOKEN": github_pr.server.token_for("alice"),
            "PREFECT_API_URL": "http://127.0.0.1:9/api", **extra}  # fmt: skip


def test_a_pr_that_changes_no_plan_starts_nothing(github_pr: GitHubPR, tmp_path: Path) -> None:
    github_pr.server.open_pr(github_pr.repo, head="infra-scale/docs", files={"README.md": "# only docs\n"})
    env = plan_env(github_pr, PR_NUMBER=str(github_pr.number + 1))
    done = run_script(env, tmp_path)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "nothing to start", done.stdout + done.stderr
    assert "the PR changes no plan file (ops/plans/infra-scale/{target}/plan.yaml)" in done.stderr
    assert github_pr.server.count("GET", r"/pulls/\d+/files$") == 2  # its one page, then an empty one


def test_a_pr_whose_files_github_does_not_list_starts_nothing(github_pr: GitHubPR, tmp_path: Path) -> None:
    github_pr.server.inject("GET", r"/pulls/\d+/files$", 500, times=1)
    done = run_script({**plan_env(github_pr), "ACTION": "labeled", "LABEL": "execute-plan"}, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error::could not list the PR's files, which choose the plans to run" in done.stdout
    assert "starting" not in done.stdout


def test_a_pr_that_changes_a_plan_starts_infra_plan(deployed: Deployed, github_pr: GitHubPR, tmp_path: Path) -> None:
    server = deployed.server
    dep = server.deployment("infra-plan", "prod")  # the PR changes prod's plan
    known = {r["id"] for r in server.flow_runs(dep["id"])}
    done = run_script({**plan_env(github_pr), **server.env}, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    new = [r for r in server.flow_runs(dep["id"]) if r["id"] not in known]
    try:
        assert len(new) == 1
        assert new[0]["parameters"] == {"pr": github_pr.number, "plan": github_pr.plan_path,
                                        "head_sha": github_pr.head_sha, "repository": github_pr.repo}
    finally:  # no worker may pick it up later in the session
        for run in new:
            server.api("DELETE", f"/flow_runs/{run['id']}")


def test_the_only_code_fetched_is_the_base_branchs_own_commit() -> None:
    fetch = fetch_step()
    assert fetch["env"]["BASE_SHA"] == "${{ github.sha }}", "pull_request_target: the base branch's commit"
    assert not any("head" in str(value) or SECRET_RE.search(str(value)) for value in fetch["env"].values())
    assert '/tarball/${BASE_SHA}"' in fetch["run"] and "BASE_SHA" in fetch["run"].split("curl", 1)[0]
    steps = [step["name"] for step in the_job()["steps"]]
    assert steps.index(fetch["name"]) < steps.index(start_step()["name"])
    assert the_job()["permissions"] == {"contents": "read", "pull-requests": "read"}
    assert "-m deployments.actions" in start_step()["run"] and 'PYTHONPATH="$RUNNER_TEMP/base"' in start_step()["run"]


def test_the_plan_choice_runs_on_the_pinned_client_alone() -> None:
    """deployments.actions (and the webhook's routing it reuses) imports only the standard library, the project's
    own packages and distributions the install step pins: the runner has nothing else."""
    import json
    import sys

    listed = subprocess.run([sys.executable, "-c", "import json, sys, deployments.actions; "
                             "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    pins = pinned_requirements()
    owners = metadata.packages_distributions()
    ours = {"core", "cli", "deployments", "integrations", "flows", "tasks", "sandbox"}
    foreign = {name: owners.get(name, ["?"]) for name in json.loads(listed.stdout)
               if name not in sys.stdlib_module_names and name not in ours and not name.startswith("_")}
    unpinned = {name: dists for name, dists in foreign.items()
                if not any(canonicalize_name(dist) in pins for dist in dists)}  # fmt: skip
    assert not unpinned, f"imported but not installed on the runner: {unpinned}"


@pytest.mark.parametrize(
    ("pages", "code", "out"),
    [
        ('["README.md"]\n["ops/plans/infra-scale/staging/plan.yaml", "ops/plans/infra-scale/x y/plan.yaml"]\n', 0,
         "staging ops/plans/infra-scale/staging/plan.yaml\n"),
        ('["ops/plans/infra-scale/x/plan.yaml\\nops/plans/infra-scale/prod/plan.yaml"]\n', 0, ""),
        ("ops/plans/infra-scale/prod/plan.yaml\n", 2, ""),
        ('[{"filename": "ops/plans/infra-scale/prod/plan.yaml"}]\n', 2, ""),
    ],
)
def test_the_plan_choice_reads_only_json_listings_of_paths(pages: str, code: int, out: str) -> None:
    """A path holding a newline stays one path (it names no plan); anything but JSON arrays of paths is refused."""
    import io

    from deployments.actions import main

    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["acme/infra"], io.StringIO(pages), stdout, stderr) == code
    assert stdout.getvalue() == out
    assert (stderr.getvalue().startswith("error: stdin:") if code == 2 else bool(out) or "changes no plan file"
            in stderr.getvalue())  # fmt: skip
