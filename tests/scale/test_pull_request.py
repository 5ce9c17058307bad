"""One PR per target on the GitHub test server: opened, then updated (never a second), idempotent under faults."""

from datetime import date

import pytest

from integrations.github import GitHubError, GitHubSettings
from integrations.pull_request import branch_name, publish_pull_request
from tests.fixtures.github import GitHubServer
from tests.scale.conftest import REPO

DAY = date(2026, 11, 28)
PLAN = "ops/plans/infra-scale/staging/plan.yaml"
PREV = "ops/plans/infra-scale/staging/previous-hpa-api.yaml"


def publish(files: dict[str, str], body: str = "body", day: date = DAY, target: str = "staging"):  # type: ignore[no-untyped-def]
    return publish_pull_request(GitHubSettings.from_env(), target, files, body, day)


def open_prs(server: GitHubServer) -> list[int]:
    repo = server.repos[REPO]
    return sorted(n for n, i in repo.issues.items() if i.is_pull and i.state == "open")


def test_opens_a_pr_with_branch_files_title_label(github: GitHubServer) -> None:
    outcome = publish({PLAN: "namespace: a\n", PREV: "kind: x\n"}, "the table")
    assert outcome.created and outcome.branch == "infra-scale/staging/2026-11-28"
    assert outcome.committed == (PLAN, PREV)
    pr = github.snapshot(REPO, outcome.number)
    assert pr.title == "infra-scale: staging (2026-11-28)" and pr.head_ref == outcome.branch and pr.base_ref == "main"
    assert pr.body is not None and pr.body.startswith("<!-- infra-scale:target=staging -->\nthe table")
    assert github.labels_of(REPO, outcome.number) == ["infra-plan"]
    assert github.file_at(REPO, outcome.branch, PLAN) == b"namespace: a\n"
    assert github.file_at(REPO, "main", PLAN) is None


def test_second_run_same_night_updates_the_pr(github: GitHubServer) -> None:
    first = publish({PLAN: "v: 1\n"}, "one")
    second = publish({PLAN: "v: 2\n"}, "two")
    assert not second.created and second.number == first.number and second.committed == (PLAN,)
    assert open_prs(github) == [first.number]
    assert github.file_at(REPO, first.branch, PLAN) == b"v: 2\n"
    assert github.snapshot(REPO, first.number).body.endswith("two")  # type: ignore[union-attr]
    # the same files again: nothing committed, nothing posted
    posts = github.count("POST") + github.count("PUT")
    third = publish({PLAN: "v: 2\n"}, "two")
    assert third.committed == () and github.count("POST") + github.count("PUT") == posts


def test_next_day_updates_the_open_pr_of_an_earlier_day(github: GitHubServer) -> None:
    first = publish({PLAN: "v: 1\n"})
    later = publish({PLAN: "v: 3\n"}, day=date(2026, 11, 29))
    assert later.number == first.number and later.branch == branch_name("staging", DAY)
    assert github.snapshot(REPO, first.number).title == "infra-scale: staging (2026-11-29)"
    assert open_prs(github) == [first.number]


def test_other_targets_and_closed_prs_are_separate(github: GitHubServer) -> None:
    staging = publish({PLAN: "v: 1\n"})
    prod = publish({"ops/plans/infra-scale/prod/plan.yaml": "v: 1\n"}, target="prod")
    assert prod.number != staging.number and prod.created
    github.close_pr(REPO, staging.number, "alice")
    reopened = publish({PLAN: "v: 2\n"})
    assert reopened.created and reopened.number not in (staging.number, prod.number)
    assert reopened.branch == staging.branch  # the branch is reused, the closed PR is left alone


def test_a_fork_pr_with_a_matching_branch_is_not_updated(github: GitHubServer) -> None:
    fork = github.open_pr(
        REPO,
        head="infra-scale/staging/2026-11-28",
        fork_owner="mallory",
        title="infra-scale: staging (2026-11-28)",
        body=None,
        files={PLAN: "evil\n"},
    )
    outcome = publish({PLAN: "v: 1\n"})
    assert outcome.created and outcome.number != fork
    assert github.file_at("mallory/infra", "infra-scale/staging/2026-11-28", PLAN) == b"evil\n"
    assert github.file_at(REPO, outcome.branch, PLAN) == b"v: 1\n"


def test_stored_then_failed_writes_are_not_repeated(github: GitHubServer) -> None:
    github.inject("PUT", r"/contents/", 502, store_then_fail=True)
    github.inject("POST", r"/pulls$", 500, store_then_fail=True)
    github.inject("POST", r"/labels$", 503, store_then_fail=True)
    outcome = publish({PLAN: "v: 1\n"})
    assert open_prs(github) == [outcome.number]
    assert github.count("PUT", r"/contents/") == 1 and github.count("POST", r"/pulls$") == 1
    assert github.labels_of(REPO, outcome.number) == ["infra-plan"]


def test_permanent_failure_is_one_clear_error(github: GitHubServer) -> None:
    github.inject("POST", r"/git/refs$", 403, times=5)
    with pytest.raises(GitHubError, match="GitHub answered 403 while publishing the infra-scale plan for staging"):
        publish({PLAN: "v: 1\n"})


def test_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GH_OWNER", "acme")
    monkeypatch.setenv("GH_REPO", "infra")
    with pytest.raises(GitHubError, match="GitHub settings missing: GITHUB_TOKEN"):
        publish({PLAN: "v: 1\n"})


def test_an_applied_plan_is_not_overwritten(github: GitHubServer) -> None:
    first = publish({PLAN: "v: 1\n"})
    github.add_comment(REPO, first.number, "alice", f"<!-- infra-orchestrator:apply:{PLAN} -->\n### applied")
    second = publish({PLAN: "v: 2\n"})
    assert second.blocked is not None and "has been applied" in second.blocked
    assert second.number == first.number and second.committed == ()
    assert github.file_at(REPO, first.branch, PLAN) == b"v: 1\n" and open_prs(github) == [first.number]
    github.add_comment(REPO, first.number, "alice", f"<!-- infra-orchestrator:rollback:{PLAN} -->\n### rolled back")
    third = publish({PLAN: "v: 3\n"})
    assert third.blocked is None and third.committed == (PLAN,)
