"""One retry layer per GitHub write, counted at the GitHub test server.

Each POST (commit status, audit comment, opening the PR, a label) is retried by `integrations.github.written` on
`core.retry.GITHUB_RETRY` and by nothing else (PyGithub's client retries no POST, no task or loop wraps it), so a
write that keeps failing with a 502 reaches the server exactly `GITHUB_RETRY.attempts` times. A rate limit is
waited for as long as GitHub asks (Retry-After), and a 404 or 422 is not retried at all. The DELETE that claims a
label is retried by PyGithub's client alone, `retries` times.
"""

from collections.abc import Callable
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

import core.retry
from core.errors import PermanentError, TemporaryError
from core.gate import GateRequirement
from core.retry import GITHUB_RETRY
from integrations.github import (
    GitHubError,
    GitHubSettings,
    asked_wait_s,
    claim_trigger_label,
    restore_trigger_label,
    set_commit_status,
    status_descriptions,
    upsert_audit_comment,
)
from integrations.pull_request import plan_status, publish_pull_request
from tests.fixtures.github import GitHubPR

SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
             "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}


def settings_for(world: GitHubPR) -> GitHubSettings:
    return GitHubSettings(**world.settings_kwargs("alice"), retries=2, backoff_factor=0.01, timeout=5.0,
                          max_rate_limit_wait=30.0)


def requirement(world: GitHubPR) -> GateRequirement:
    return GateRequirement(flow="apply", pr=world.number, plan_path=world.plan_path)


def write_status(world: GitHubPR) -> object:
    return set_commit_status(settings_for(world), None, world.head_sha, "infra/apply", "success", "applied")


def write_comment(world: GitHubPR) -> object:
    return upsert_audit_comment(settings_for(world), requirement(world), "applied")


def open_pr(world: GitHubPR) -> object:
    return publish_pull_request(settings_for(world), "staging", {"ops/plans/infra-scale/staging/plan.yaml": "v: 1\n"},
                                "body", date(2026, 12, 7))


def put_label_back(world: GitHubPR) -> object:
    return restore_trigger_label(settings_for(world), requirement(world))


WRITES: dict[str, tuple[str, Callable[[GitHubPR], object]]] = {
    "status": (r"/statuses/", write_status),
    "comment": (r"/issues/\d+/comments$", write_comment),
    "pr-open": (r"/pulls$", open_pr),
    "label": (r"/issues/\d+/labels$", put_label_back),
}


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses of the retry layer in core.retry, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(core.retry, "time", SimpleNamespace(sleep=slept.append))
    return slept


@pytest.mark.parametrize("write", WRITES)
def test_a_502_on_a_write_is_retried_by_one_layer_on_its_schedule(github_pr: GitHubPR, waits: list[float],
                                                                  write: str) -> None:
    path, call = WRITES[write]
    github_pr.server.inject("POST", path, 502, times=100)

    with pytest.raises(GitHubError) as failed:
        call(github_pr)

    assert isinstance(failed.value, TemporaryError) and "502" in str(failed.value)
    assert github_pr.server.count("POST", path) == GITHUB_RETRY.attempts == 3
    assert waits == list(GITHUB_RETRY.delays_s)


@pytest.mark.parametrize("write", WRITES)
def test_a_secondary_rate_limit_on_a_write_is_waited_for_as_github_asks(github_pr: GitHubPR, waits: list[float],
                                                                        write: str) -> None:
    path, call = WRITES[write]
    github_pr.server.inject("POST", path, 403, body=SECONDARY, retry_after=7)

    call(github_pr)

    assert github_pr.server.count("POST", path) == 2
    assert waits == [7.0], "Retry-After (7 s) is longer than the schedule's first pause (2 s)"


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("status", [404, 422])
def test_a_404_or_422_on_a_write_is_not_retried(github_pr: GitHubPR, waits: list[float], write: str,
                                                status: int) -> None:
    path, call = WRITES[write]
    github_pr.server.inject("POST", path, status, times=100)

    with pytest.raises(GitHubError) as failed:
        call(github_pr)

    assert isinstance(failed.value, PermanentError)
    assert github_pr.server.count("POST", path) == 1 and waits == []


def test_a_rate_limit_longer_than_the_cap_is_not_waited_for(github_pr: GitHubPR, waits: list[float]) -> None:
    github_pr.server.inject("POST", r"/statuses/", 429, retry_after=600, times=100)

    with pytest.raises(GitHubError, match="waiting would take 600s, more than the configured cap of 30s"):
        write_status(github_pr)

    assert github_pr.server.count("POST", r"/statuses/") == 1 and waits == []


def test_the_label_claim_is_retried_by_the_client_alone(github_pr: GitHubPR, waits: list[float]) -> None:
    github_pr.label()
    path = r"/issues/\d+/labels/"
    github_pr.server.inject("DELETE", path, 502, times=100)

    with pytest.raises(GitHubError, match="502"):
        claim_trigger_label(settings_for(github_pr), requirement(github_pr))

    assert github_pr.server.count("DELETE", path) == settings_for(github_pr).retries + 1 == 3
    assert waits == [], "no second layer around PyGithub's"


@pytest.mark.parametrize(("headers", "wait"), [
    ({"Retry-After": "30"}, 30.0),
    ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1100"}, 101.0),
    ({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "1100"}, 60.0),
    ({}, 60.0),
])
def test_the_wait_github_asks_for(headers: dict[str, Any], wait: float) -> None:
    assert asked_wait_s(headers, now=1000.0) == wait


def test_a_status_is_one_request_through_pygithub_s_public_api(github_pr: GitHubPR) -> None:
    """A lazy client's Commit is its URL: writing a status, listing them and reading the combined one each cost one
    request. Should PyGithub's get_commit start fetching the commit, this fails (and the test server has no
    GET of a commit: it would answer 404)."""
    settings, head = settings_for(github_pr), github_pr.head_sha
    set_commit_status(settings, None, head, "infra/plan", "success", "3 steps valid")
    assert [(r.method, r.path) for r in github_pr.server.requests()] == [
        ("POST", f"/repos/{github_pr.repo}/statuses/{head}")]
    assert status_descriptions(settings, None, head, "infra/plan") == ["3 steps valid"]
    assert plan_status(settings, None, head) == "success"
    assert [(r.method, r.path) for r in github_pr.server.requests()][1:] == [
        ("GET", f"/repos/{github_pr.repo}/commits/{head}/statuses"),
        ("GET", f"/repos/{github_pr.repo}/commits/{head}/status")]
