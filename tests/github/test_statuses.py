"""Commit statuses (written through PyGithub's requester, read over plain HTTP), a PR's files and its head view
against the GitHub test server, every response checked against GitHub's published schema at teardown."""

from typing import Any

import pytest
import requests

from integrations.github import (
    GitHubError,
    GitHubSettings,
    changed_files,
    pull_request_view,
    set_commit_status,
)
from tests.fixtures.github import GitHubPR


def settings_for(world: GitHubPR, login: str = "alice", **kw: Any) -> GitHubSettings:
    return GitHubSettings(**{**world.settings_kwargs(login), "retries": 2, "backoff_factor": 0.01, "timeout": 5.0,
                             **kw})


def test_statuses_are_recorded_and_the_newest_per_context_counts(github_pr: GitHubPR, schema_check: Any) -> None:
    settings, head = settings_for(github_pr), github_pr.head_sha
    set_commit_status(settings, None, head, "infra/apply", "pending", "infra-apply is running")
    set_commit_status(settings, None, head, "infra/plan", "success", "3 steps valid", "http://ui/runs/flow-run/1")
    set_commit_status(settings, None, head, "infra/apply", "failure", "x" * 300)

    def read(path: str) -> Any:  # as a reader with read access only (branch protection's view)
        answer = requests.get(f"{github_pr.server.url}/repos/{github_pr.repo}/commits/{head}/{path}", timeout=5,
                              headers={"Authorization": f"token {github_pr.server.token_for('rita')}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    listed = [(status["context"], status["state"]) for status in read("statuses")]
    assert listed == [("infra/apply", "failure"), ("infra/plan", "success"), ("infra/apply", "pending")]
    combined = read("status")
    assert combined["state"] == "failure" and {s["context"]: s["state"] for s in combined["statuses"]} == \
        {"infra/apply": "failure", "infra/plan": "success"}
    newest = github_pr.server.latest_statuses(github_pr.repo, head)
    assert newest["infra/plan"].target_url == "http://ui/runs/flow-run/1"
    assert newest["infra/apply"].description is not None and len(newest["infra/apply"].description) == 140
    schema_check()


def test_a_status_needs_write_access_a_known_commit_and_a_known_state(github_pr: GitHubPR) -> None:
    head = github_pr.head_sha
    with pytest.raises(GitHubError, match=r"403|404"):
        set_commit_status(settings_for(github_pr, "rita"), None, head, "infra/plan", "success", "read only")
    with pytest.raises(GitHubError, match="422"):
        set_commit_status(settings_for(github_pr), None, "0" * 40, "infra/plan", "success", "no such commit")
    with pytest.raises(GitHubError, match="unknown commit status state"):
        set_commit_status(settings_for(github_pr), None, head, "infra/plan", "green", "not a state")
    assert github_pr.server.statuses_for(github_pr.repo, head) == []


def test_a_transient_failure_is_tried_once_more(github_pr: GitHubPR) -> None:
    github_pr.server.inject("POST", r"/statuses/", 502)
    set_commit_status(settings_for(github_pr), None, github_pr.head_sha, "infra/plan", "success", "ok")
    assert github_pr.server.count("POST", r"/statuses/") == 2
    assert [s.state for s in github_pr.server.statuses_for(github_pr.repo, github_pr.head_sha)] == ["success"]


def test_the_pr_view_and_files(github_pr: GitHubPR, schema_check: Any) -> None:
    settings = settings_for(github_pr)
    view = pull_request_view(settings, None, github_pr.number, (github_pr.plan_path, "ops/absent.yaml"))
    assert view.head_sha == github_pr.head_sha
    assert view.url == f"{github_pr.server.url}/{github_pr.repo}/pull/{github_pr.number}"
    assert view.blobs["ops/absent.yaml"] is None and view.blobs[github_pr.plan_path] is not None
    assert changed_files(settings, None, github_pr.number) == [github_pr.plan_path]
    github_pr.server.push_commit(github_pr.repo, github_pr.number, {"README.md": "# changed\n"})
    assert changed_files(settings, None, github_pr.number) == ["README.md", github_pr.plan_path]
    schema_check()
