"""integrations/github.py with PyGithub against the GitHub test server (every response schema-checked)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from core.gate import GateRequirement
from core.report import EARLIER_RUNS
from integrations.github import (
    GitHubError,
    GitHubSettings,
    audit_marker,
    check_gate,
    claim_trigger_label,
    fetch_facts,
    recheck_gate,
    restore_trigger_label,
    upsert_audit_comment,
)
from sandbox.github.state import blob_sha
from tests.fixtures.github import PLAN_PATH, GitHubPR, GitHubServer


def settings_for(world: GitHubPR, login: str = "alice", **kw: Any) -> GitHubSettings:
    base: dict[str, Any] = {**world.settings_kwargs(login), "retries": 3, "backoff_factor": 0.01,
                            "max_rate_limit_wait": 5.0, "timeout": 5.0}
    base.update(kw)
    return GitHubSettings(**base)


def req(world: GitHubPR, flow: str = "apply", **kw: Any) -> GateRequirement:
    return GateRequirement(flow, world.number, world.plan_path, **kw)


# ----------------------------------------------------------------------------- who labeled
@pytest.mark.parametrize("actor", ["alice", "mona", "walt"])
def test_label_by_write_or_more_is_allowed(github_pr: GitHubPR, actor: str) -> None:
    github_pr.label("execute-plan", actor)
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert decision.allowed, decision.reason
    assert decision.head_sha == github_pr.head_sha
    assert decision.label_actor == actor

    assert decision.plan_blob_sha == blob_sha(github_pr.plan_text.encode())


@pytest.mark.parametrize(("actor", "role"), [("tess", "triage"), ("rita", "read"), ("eve", "read")])
def test_label_by_triage_read_or_outsider_is_refused(github_pr: GitHubPR, actor: str, role: str) -> None:
    # eve is no collaborator: on a public repository GitHub reports her as read.
    github_pr.label("execute-plan", actor)
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert not decision.allowed
    assert decision.reason == (f"label 'execute-plan' was added by '{actor}' whose permission is '{role}' "
                               "(needs write, maintain or admin)")


def test_outsider_on_private_repo_has_permission_none(github_server: GitHubServer) -> None:
    github_server.create_repo("acme/secret", private=True)
    github_server.add_user("eve")
    number = github_server.open_pr("acme/secret", head="x", files={PLAN_PATH: "a: 1\n"})
    github_server.add_label("acme/secret", number, "execute-plan", "eve")
    settings = GitHubSettings("acme", "secret", github_server.token_for("acme"), github_server.url)
    decision = check_gate(settings, GateRequirement("apply", number, PLAN_PATH))
    assert decision.reason.endswith("whose permission is 'none' (needs write, maintain or admin)")


def test_newest_labeled_event_decides(github_pr: GitHubPR) -> None:
    github_pr.label("execute-plan", "alice")
    github_pr.server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "tess")
    github_pr.label("execute-plan", "tess")
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert not decision.allowed and "'tess'" in decision.reason
    # ...and the other way round: an admin re-applying the label makes it valid.
    github_pr.server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "alice")
    github_pr.label("execute-plan", "alice")
    assert check_gate(settings_for(github_pr), req(github_pr)).allowed


def test_newest_event_found_across_pages(github_pr: GitHubPR) -> None:
    server = github_pr.server
    for _ in range(60):  # 120 events before the decisive one: more than one page of 100
        github_pr.label("execute-plan", "alice")
        server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "alice")
    github_pr.label("execute-plan", "tess")
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert "'tess'" in decision.reason
    assert server.count("GET", r"/issues/\d+/timeline$") == 2


def test_other_label_events_do_not_count(github_pr: GitHubPR) -> None:
    github_pr.label("rollback-plan", "alice")
    github_pr.label("execute-plan", "tess")
    decision = check_gate(settings_for(github_pr), req(github_pr, "rollback"))
    assert decision.allowed, decision.reason
    assert "'tess'" in check_gate(settings_for(github_pr), req(github_pr)).reason


def test_missing_label(github_pr: GitHubPR) -> None:
    decision = check_gate(settings_for(github_pr), req(github_pr, "rollback"))
    assert decision.reason == "PR missing label 'rollback-plan'"


def test_label_added_through_the_api_records_the_token_user(github_pr: GitHubPR) -> None:
    from github import Auth, Github

    g = Github(base_url=github_pr.server.url, auth=Auth.Token(github_pr.server.token_for("tess")),
               seconds_between_requests=None, seconds_between_writes=None)
    g.get_repo(github_pr.repo).get_pull(github_pr.number).add_to_labels("execute-plan")  # bare array body
    assert github_pr.server.requests("POST", r"/labels$")[0].body == ["execute-plan"]
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert "'tess' whose permission is 'triage'" in decision.reason


# ----------------------------------------------------------------------------- PR state
def test_closed_pr_refused(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.close_pr(github_pr.repo, github_pr.number)
    assert check_gate(settings_for(github_pr), req(github_pr)).reason == f"PR #{github_pr.number} is closed"


def test_merged_pr_refused(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.merge_pr(github_pr.repo, github_pr.number)
    assert check_gate(settings_for(github_pr), req(github_pr)).reason == f"PR #{github_pr.number} is merged"


def test_fork_pr_refused_even_if_admin_labeled(github_pr: GitHubPR) -> None:
    server = github_pr.server
    number = server.open_pr(github_pr.repo, head="evil", fork_owner="mallory", files={PLAN_PATH: "x: 1\n"})
    server.add_label(github_pr.repo, number, "execute-plan", "alice")
    decision = check_gate(settings_for(github_pr), GateRequirement("apply", number, PLAN_PATH))
    assert decision.reason == f"PR #{number} is from a fork"


def test_same_repo_pr_in_a_repo_that_is_itself_a_fork_is_allowed(github_server: GitHubServer) -> None:
    github_server.create_repo("upstream/infra")
    github_server.create_repo("acme/infra", fork_of="upstream/infra")
    number = github_server.open_pr("acme/infra", head="plan", files={PLAN_PATH: "a: 1\n"})
    github_server.add_label("acme/infra", number, "execute-plan", "acme")
    settings = GitHubSettings("acme", "infra", github_server.token_for("acme"), github_server.url)
    decision = check_gate(settings, GateRequirement("apply", number, PLAN_PATH))
    assert decision.allowed, decision.reason


def test_unknown_pr_and_missing_plan(github_pr: GitHubPR) -> None:
    github_pr.label()
    assert check_gate(settings_for(github_pr), GateRequirement("apply", 99, PLAN_PATH)).reason == (
        "PR #99 not found in acme/infra")
    decision = check_gate(settings_for(github_pr), req(github_pr) .__class__("apply", github_pr.number,
                                                                             "ops/plans/other/plan.yaml"))
    assert decision.reason.startswith("plan file ops/plans/other/plan.yaml not found at head ")


# ----------------------------------------------------------------------------- time of check / time of use
def test_recheck_passes_when_nothing_changed(github_pr: GitHubPR) -> None:
    github_pr.label()
    settings = settings_for(github_pr)
    first = check_gate(settings, req(github_pr))
    again = recheck_gate(settings, req(github_pr), first)
    assert first.allowed and again.allowed


def test_head_pushed_between_check_and_recheck(github_pr: GitHubPR) -> None:
    github_pr.label()
    settings = settings_for(github_pr)
    first = check_gate(settings, req(github_pr))
    new = github_pr.server.push_commit(github_pr.repo, github_pr.number, {"README.md": "changed\n"})
    decision = recheck_gate(settings, req(github_pr), first)
    assert decision.reason == f"head SHA changed since the check ({first.head_sha[:7]} -> {new[:7]})"  # type: ignore[index]


def test_plan_changed_between_check_and_recheck(github_pr: GitHubPR) -> None:
    github_pr.label()
    settings = settings_for(github_pr)
    first = check_gate(settings, req(github_pr))
    github_pr.server.change_file(github_pr.repo, github_pr.number, PLAN_PATH, "namespace: other\n")
    decision = recheck_gate(settings, req(github_pr), first)
    assert not decision.allowed and decision.reason.startswith("head SHA changed since the check")
    # the plan's own blob moved too: compare with facts fetched now
    now = fetch_facts(settings, req(github_pr))
    assert now.plan_blob_sha != first.plan_blob_sha


def test_label_removed_between_check_and_recheck(github_pr: GitHubPR) -> None:
    github_pr.label()
    settings = settings_for(github_pr)
    first = check_gate(settings, req(github_pr))
    github_pr.server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "alice")
    assert recheck_gate(settings, req(github_pr), first).reason == "label 'execute-plan' was removed since the check"


def test_closed_between_check_and_recheck(github_pr: GitHubPR) -> None:
    github_pr.label()
    settings = settings_for(github_pr)
    first = check_gate(settings, req(github_pr))
    github_pr.server.close_pr(github_pr.repo, github_pr.number)
    assert recheck_gate(settings, req(github_pr), first).reason == f"PR #{github_pr.number} is closed"


# ----------------------------------------------------------------------------- approvals
def test_approval_required(github_pr: GitHubPR) -> None:
    server, needs = github_pr.server, req(github_pr, require_approval=True)
    github_pr.label()
    settings = settings_for(github_pr)
    assert "no approving review" in check_gate(settings, needs).reason
    server.add_review(github_pr.repo, github_pr.number, "rita")  # read access does not count
    assert "no approving review" in check_gate(settings, needs).reason
    server.add_review(github_pr.repo, github_pr.number, "walt")
    old_head = github_pr.head_sha
    assert check_gate(settings, needs).allowed
    server.push_commit(github_pr.repo, github_pr.number, {"README.md": "more\n"})  # approval was on old head
    assert github_pr.head_sha != old_head
    server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "alice")
    github_pr.label()  # labelled again for the new head
    assert "no approving review" in check_gate(settings, needs).reason
    server.add_review(github_pr.repo, github_pr.number, "mona")
    assert check_gate(settings, needs).allowed
    server.add_review(github_pr.repo, github_pr.number, "mona", state="CHANGES_REQUESTED")
    assert "no approving review" in check_gate(settings, needs).reason


# ----------------------------------------------------------------------------- failures
def test_500_on_a_read_is_retried(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.inject("GET", rf"/pulls/{github_pr.number}$", 500, times=2)
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert decision.allowed, decision.reason
    assert github_pr.server.count("GET", rf"/pulls/{github_pr.number}$") == 3


def test_5xx_forever_is_a_clear_refusal(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.inject("GET", r"/timeline$", 502, times=100)
    settings = settings_for(github_pr, retries=2)
    with pytest.raises(GitHubError) as info:
        fetch_facts(settings, req(github_pr))
    assert str(info.value).startswith(f"GitHub answered 502 while reading PR #{github_pr.number}")
    assert info.value.transient
    assert github_pr.server.count("GET", r"/timeline$") == 3
    decision = check_gate(settings, req(github_pr))
    assert not decision.allowed and decision.reason.startswith("GitHub answered 502")


def test_bad_token_is_one_clear_error(github_pr: GitHubPR) -> None:
    settings = settings_for(github_pr, token="ghp_definitelyNotAValidTokenXYZ123")
    with pytest.raises(GitHubError) as info:
        fetch_facts(settings, req(github_pr))
    assert str(info.value) == (f"GitHub rejected the token (401 Bad credentials) while reading PR "
                               f"#{github_pr.number} (acme/infra at {github_pr.server.url})")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert github_pr.server.requests()[-1].response["message"] == "Bad credentials"
    assert github_pr.server.count() == 1  # 401 is not retried
    assert check_gate(settings, req(github_pr)).reason.startswith("GitHub rejected the token")


def test_missing_settings_refuse(github_pr: GitHubPR) -> None:
    settings = GitHubSettings.from_env({"GITHUB_API_URL": github_pr.server.url})
    decision = check_gate(settings, req(github_pr))
    assert (decision.allowed, decision.reason) == (False, "GitHub settings missing: GH_OWNER, GH_REPO, GITHUB_TOKEN")
    assert github_pr.server.count() == 0


def test_rate_limit_waited_for_within_the_cap(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.inject("GET", rf"/pulls/{github_pr.number}$", 403, rate_limit_reset_in=1)
    started = time.monotonic()
    decision = check_gate(settings_for(github_pr, max_rate_limit_wait=5), req(github_pr))
    assert decision.allowed, decision.reason
    assert 0.5 < time.monotonic() - started < 4.5


def test_rate_limit_beyond_the_cap_is_a_clear_error(github_pr: GitHubPR) -> None:
    github_pr.server.inject("GET", rf"/pulls/{github_pr.number}$", 403, rate_limit_reset_in=3600)
    started = time.monotonic()
    with pytest.raises(GitHubError) as info:
        fetch_facts(settings_for(github_pr, max_rate_limit_wait=2), req(github_pr))
    assert time.monotonic() - started < 2
    assert "GitHub rate limit exceeded while reading PR" in str(info.value)
    assert "more than the configured cap of 2s" in str(info.value)


def test_retry_after_429_within_and_beyond_the_cap(github_pr: GitHubPR) -> None:
    github_pr.label()
    server = github_pr.server
    server.inject("GET", rf"/pulls/{github_pr.number}$", 429, retry_after=1)
    assert check_gate(settings_for(github_pr), req(github_pr)).allowed
    server.inject("GET", rf"/pulls/{github_pr.number}$", 429, retry_after=600)
    started = time.monotonic()
    with pytest.raises(GitHubError, match="more than the configured cap of 5s"):
        fetch_facts(settings_for(github_pr), req(github_pr))
    assert time.monotonic() - started < 2


def test_unreachable_server(github_pr: GitHubPR) -> None:
    settings = settings_for(github_pr, api_url="http://127.0.0.1:9", retries=0)
    with pytest.raises(GitHubError, match="cannot reach GitHub while reading PR"):
        fetch_facts(settings, req(github_pr))


# ----------------------------------------------------------------------------- writes
def test_trigger_label_claimed_once_put_back_and_relabel_runs_again(github_pr: GitHubPR) -> None:
    github_pr.label()
    settings = settings_for(github_pr, login="walt")
    assert check_gate(settings, req(github_pr)).allowed
    assert claim_trigger_label(settings, req(github_pr)) is True
    assert "execute-plan" not in github_pr.server.labels_of(github_pr.repo, github_pr.number)
    event = github_pr.server.snapshot(github_pr.repo, github_pr.number).events[-1]
    assert (event.event, event.actor, event.label) == ("unlabeled", "walt", "execute-plan")
    assert check_gate(settings, req(github_pr)).reason == "PR missing label 'execute-plan'"
    assert claim_trigger_label(settings, req(github_pr)) is False  # already gone: a second run's claim fails
    restore_trigger_label(settings, req(github_pr))  # a run that changed nothing puts it back
    assert "execute-plan" in github_pr.server.labels_of(github_pr.repo, github_pr.number)
    github_pr.label("execute-plan", "mona")
    assert check_gate(settings, req(github_pr)).allowed


def test_audit_comment_created_once_then_edited(github_pr: GitHubPR) -> None:
    settings = settings_for(github_pr)
    first = upsert_audit_comment(settings, req(github_pr), "| step | result |\n|---|---|\n| 1 | done |")
    second = upsert_audit_comment(settings, req(github_pr), "| step | result |\n|---|---|\n| 1 | failed |")
    comments = github_pr.server.issue_comments(github_pr.repo, github_pr.number)
    assert first == second == comments[0].id and len(comments) == 1
    assert comments[0].body.splitlines()[0] == audit_marker(req(github_pr))
    newest, _, earlier = comments[0].body.partition(EARLIER_RUNS)
    assert newest.rstrip().endswith("| 1 | failed |") and "| 1 | done |" not in newest
    assert "<details><summary>| step | result |</summary>" in earlier and "| 1 | done |" in earlier
    assert github_pr.server.count("POST", r"/comments$") == 1
    assert github_pr.server.count("PATCH", r"/issues/comments/\d+$") == 1
    # another flow on the same plan gets its own comment; an unchanged body is not re-sent
    upsert_audit_comment(settings, req(github_pr, "rollback"), "rolled back")
    upsert_audit_comment(settings, req(github_pr, "rollback"), "rolled back")
    assert len(github_pr.server.issue_comments(github_pr.repo, github_pr.number)) == 2
    assert github_pr.server.count("PATCH", r"/issues/comments/\d+$") == 1


def test_audit_comment_single_and_current_after_post_stored_then_failed(github_pr: GitHubPR) -> None:
    settings = settings_for(github_pr)
    github_pr.server.inject("POST", r"/issues/\d+/comments$", 500, store_then_fail=True)
    comment_id = upsert_audit_comment(settings, req(github_pr), "summary v1")
    comments = github_pr.server.issue_comments(github_pr.repo, github_pr.number)
    assert [c.id for c in comments] == [comment_id]
    assert comments[0].body.endswith("summary v1")
    assert github_pr.server.count("POST", r"/comments$") == 1  # never re-posted blindly
    github_pr.server.inject("PATCH", r"/issues/comments/\d+$", 500, store_then_fail=True)
    assert upsert_audit_comment(settings, req(github_pr), "summary v2") == comment_id
    comments = github_pr.server.issue_comments(github_pr.repo, github_pr.number)
    newest, _, earlier = comments[0].body.partition(EARLIER_RUNS)
    assert len(comments) == 1 and newest.rstrip().endswith("summary v2")
    assert earlier.count("summary v1") == 1, "the retried edit keeps the earlier run once"


def test_audit_comment_post_failed_before_storing_is_posted_again(github_pr: GitHubPR) -> None:
    settings = settings_for(github_pr)
    github_pr.server.inject("POST", r"/issues/\d+/comments$", 502)
    upsert_audit_comment(settings, req(github_pr), "summary")
    assert len(github_pr.server.issue_comments(github_pr.repo, github_pr.number)) == 1
    assert github_pr.server.count("POST", r"/comments$") == 2


def test_audit_comment_ignores_marker_in_someone_elses_comment(github_pr: GitHubPR) -> None:
    marker = audit_marker(req(github_pr))
    github_pr.server.add_comment(github_pr.repo, github_pr.number, "tess", f"{marker}\nfake")
    comment_id = upsert_audit_comment(settings_for(github_pr), req(github_pr), "real")
    comments = github_pr.server.issue_comments(github_pr.repo, github_pr.number)
    assert len(comments) == 2 and comments[0].body.endswith("fake")
    assert comments[1].id == comment_id and comments[1].user == "alice"


# ----------------------------------------------------------------------------- secrecy
def test_token_never_leaks(github_pr: GitHubPR, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = settings_for(github_pr)
    bad = settings_for(github_pr, token="ghp_leakcanaryLEAKCANARY0123456789")
    seen: list[str] = [repr(good), str(good), repr(bad)]
    github_pr.label()
    first = check_gate(good, req(github_pr))
    seen += [first.reason, repr(first), repr(fetch_facts(good, req(github_pr)))]
    github_pr.server.inject("GET", r"/pulls/", 500, times=100)
    seen += [check_gate(good, req(github_pr)).reason]
    github_pr.server.clear_faults()
    for call in (lambda: fetch_facts(bad, req(github_pr)), lambda: claim_trigger_label(bad, req(github_pr)),
                 lambda: upsert_audit_comment(bad, req(github_pr), f"token is {bad.token}")):
        with pytest.raises(GitHubError) as info:
            call()
        seen += [str(info.value), repr(info.value)]
    seen += [check_gate(bad, req(github_pr)).reason, recheck_gate(bad, req(github_pr), first).reason]
    upsert_audit_comment(good, req(github_pr), f"leaky body {good.token}")
    seen += [c.body for c in github_pr.server.issue_comments(github_pr.repo, github_pr.number)]
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert len(caplog.records) > 5  # PyGithub/urllib3 debug logging was really captured
    blob = "\n".join(seen)
    for token in (good.token, bad.token):
        assert token and token not in blob
    assert "GitHub rejected the token" in blob


def test_settings_from_env_and_repr() -> None:
    settings = GitHubSettings.from_env({
        "GH_OWNER": "acme", "GH_REPO": "infra", "GITHUB_TOKEN": "ghp_secretsecretsecret", "PRNUM": "12",
        "GITHUB_API_URL": "http://127.0.0.1:1/", "GITHUB_MAX_RATE_LIMIT_WAIT": "7"})
    assert (settings.owner, settings.repo, settings.pr, settings.api_url, settings.max_rate_limit_wait) == (
        "acme", "infra", 12, "http://127.0.0.1:1", 7.0)
    assert "secret" not in repr(settings) and "token='***'" in repr(settings)
    assert GitHubSettings.from_env({}).api_url == "https://api.github.com"
    fallback = GitHubSettings.from_env({"GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN_BLOCK": "gh-token"})
    assert (fallback.owner, fallback.repo, fallback.missing()) == ("o", "r", [])


def test_prefect_not_imported_unless_a_block_is_named(github_pr: GitHubPR) -> None:
    import subprocess
    import sys

    github_pr.label()
    code = (
        "import sys\n"
        "from core.gate import GateRequirement\n"
        "from integrations.github import GitHubSettings, check_gate\n"
        f"s = GitHubSettings('acme', 'infra', {github_pr.server.token_for('alice')!r}, {github_pr.server.url!r})\n"
        f"d = check_gate(s, GateRequirement('apply', {github_pr.number}, {PLAN_PATH!r}))\n"
        "assert d.allowed, d.reason\n"
        "assert not any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules), 'prefect imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_deleted_fork_is_refused(github_pr: GitHubPR) -> None:
    server = github_pr.server
    number = server.open_pr(github_pr.repo, head="evil", fork_owner="mallory", files={PLAN_PATH: "x: 1\n"},
                            head_sha="f" * 40)
    server.add_label(github_pr.repo, number, "execute-plan", "alice")
    server.delete_fork("mallory/infra")
    server.schema_check_enabled = False  # GitHub sends head.repo: null here although its schema forbids it
    decision = check_gate(settings_for(github_pr), GateRequirement("apply", number, PLAN_PATH))
    assert decision.reason == f"PR #{number} is from a fork (its head repository was deleted)"
    assert decision.head_sha == "f" * 40
    assert server.requests("GET", rf"/pulls/{number}$")[0].response["head"]["repo"] is None


def test_audit_comment_with_an_app_token_that_cannot_read_user(github_pr: GitHubPR) -> None:
    server = github_pr.server
    server.add_user("github-actions[bot]", type="Bot")
    server.add_collaborator(github_pr.repo, "github-actions[bot]", "write")
    settings = settings_for(github_pr, login="github-actions[bot]")
    server.inject("GET", r"^/user$", 403, times=10, body={
        "message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest",
        "status": "403"})
    marker = audit_marker(req(github_pr))
    server.add_comment(github_pr.repo, github_pr.number, "tess", f"{marker}\nfake")  # a human: ignored
    first = upsert_audit_comment(settings, req(github_pr), "v1")
    assert upsert_audit_comment(settings, req(github_pr), "v2") == first
    comments = server.issue_comments(github_pr.repo, github_pr.number)
    newest = [(c.user, c.body.partition(EARLIER_RUNS)[0].strip().splitlines()[-1]) for c in comments]
    assert newest == [("tess", "fake"), ("github-actions[bot]", "v2")]


# ----------------------------------------------------------------------------- issue 11: what the gate trusts
def test_an_unserved_repository_is_refused_before_any_github_read(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.create_repo("mallory/infra")
    before = len(github_pr.server.log)
    decision = check_gate(settings_for(github_pr), req(github_pr, repository="mallory/infra"))
    assert decision.reason.startswith("repository mallory/infra is not served by this worker (serves: acme/infra")
    with pytest.raises(GitHubError, match="not served"):
        upsert_audit_comment(settings_for(github_pr), req(github_pr, repository="mallory/infra"), "x")
    assert len(github_pr.server.log) == before, "not one request reached GitHub"


def test_an_allowlisted_repository_is_served(github_pr: GitHubPR) -> None:
    github_pr.label()
    served = settings_for(github_pr, owner="other", repo="place", repositories=("ACME/infra",))
    decision = check_gate(served, req(github_pr, repository="acme/infra"))
    assert decision.allowed, decision.reason


def test_a_draft_pr_is_refused(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.set_draft(github_pr.repo, github_pr.number, True)
    assert check_gate(settings_for(github_pr), req(github_pr)).reason == f"PR #{github_pr.number} is a draft"


@pytest.mark.parametrize("push", ["commit", "force-push"])
def test_a_push_after_the_label_is_refused_until_labelled_again(github_pr: GitHubPR, push: str) -> None:
    server = github_pr.server
    github_pr.label()
    if push == "commit":
        sha = server.push_commit(github_pr.repo, github_pr.number, {"README.md": "changed\n"})
    else:
        sha = server.force_push(github_pr.repo, github_pr.number, {github_pr.plan_path: github_pr.plan_text})
    decision = check_gate(settings_for(github_pr), req(github_pr))
    pushed = f"commit {sha[:7]}" + (f", force-push to {sha[:7]}" if push == "force-push" else "")
    assert decision.reason == (f"PR #{github_pr.number} changed after label 'execute-plan' was added ({pushed}); "
                               "add the label again to run the new head")
    server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "alice")
    github_pr.label()
    assert check_gate(settings_for(github_pr), req(github_pr)).allowed


def retarget(github_pr: GitHubPR, base: str, login: str = "walt") -> None:
    """PATCH pulls/N {"base": ...} through GitHub's API, as the PR page's Edit does."""
    from github import Auth, Github

    client = Github(base_url=github_pr.server.url, auth=Auth.Token(github_pr.server.token_for(login)))
    client.get_repo(github_pr.repo).get_pull(github_pr.number).edit(base=base)


def test_a_retarget_after_the_label_is_refused_until_labelled_again(github_pr: GitHubPR) -> None:
    """Issue 25: the label binds the base the PR had when it was added, as it binds the head; a retarget to
    another allowed base between the label and the first check used to run."""
    from github.GithubException import GithubException

    server = github_pr.server
    server.set_branch(github_pr.repo, "release-x", server.repo(github_pr.repo).branches["main"])
    settings = settings_for(github_pr, base_branches=("release-x",))
    github_pr.label()
    with pytest.raises(GithubException) as unknown:
        retarget(github_pr, "no-such-branch")
    assert unknown.value.status == 422 and server.pull(github_pr.repo, github_pr.number).base_ref == "main"
    assert check_gate(settings, req(github_pr)).allowed
    retarget(github_pr, "release-x")
    import httpx

    headers = {"Authorization": f"token {server.token_for('alice')}"}
    # as GitHub's issue event types page says: listed by the issue events API, not by the timeline
    listed = {path: {item["event"] for item in httpx.get(f"{server.url}/repos/{github_pr.repo}/issues/"
                                                         f"{github_pr.number}/{path}", headers=headers).json()}
              for path in ("events", "timeline")}  # fmt: skip
    assert "base_ref_changed" in listed["events"] and "base_ref_changed" not in listed["timeline"]
    decision = check_gate(settings, req(github_pr))
    assert decision.reason == (f"PR #{github_pr.number} changed after label 'execute-plan' was added (its base "
                               "branch was changed); add the label again to run the new head")
    server.remove_label(github_pr.repo, github_pr.number, "execute-plan", "alice")
    github_pr.label()
    relabelled = check_gate(settings, req(github_pr))
    assert relabelled.allowed and relabelled.base_ref == "release-x"
    assert server.count("GET", r"/issues/events/\d+$") == 0, "the listed events are read as listed"


def test_an_approval_given_before_a_retarget_does_not_count(github_pr: GitHubPR) -> None:
    server, needs = github_pr.server, req(github_pr, require_approval=True)
    server.set_branch(github_pr.repo, "release-x", server.repo(github_pr.repo).branches["main"])
    settings = settings_for(github_pr, base_branches=("release-x",))
    server.add_review(github_pr.repo, github_pr.number, "walt")
    time.sleep(1.1)  # GitHub's times are in seconds: a review in the retarget's second cannot be ordered
    retarget(github_pr, "release-x", login="mona")
    github_pr.label()  # after the retarget: only the approval predates it
    assert check_gate(settings, needs).reason == (f"PR #{github_pr.number} has no approving review on head "
                                                  f"{github_pr.head_sha[:7]}")
    time.sleep(1.1)
    server.add_review(github_pr.repo, github_pr.number, "walt")
    assert check_gate(settings, needs).allowed


def test_the_event_head_sha_is_pinned(github_pr: GitHubPR) -> None:
    github_pr.label()
    labelled_at = github_pr.head_sha
    assert check_gate(settings_for(github_pr), req(github_pr, expected_head_sha=labelled_at)).allowed
    stale = req(github_pr, expected_head_sha="f" * 40)
    assert check_gate(settings_for(github_pr), stale).reason.endswith("add the label again to run the new head")


def test_a_bot_label_counts_only_when_the_bot_is_trusted(github_pr: GitHubPR) -> None:
    server = github_pr.server
    server.add_user("deployer[bot]", type="Bot")
    server.add_collaborator(github_pr.repo, "deployer[bot]", "write")
    github_pr.label(actor="deployer[bot]")
    refused = check_gate(settings_for(github_pr), req(github_pr))
    assert refused.reason == ("label 'execute-plan' was added by bot account 'deployer[bot]', which is not a "
                              "trusted bot (INFRA_TRUSTED_BOTS)")
    trusted = settings_for(github_pr, trusted_bots=("deployer[bot]",))
    assert check_gate(trusted, req(github_pr)).allowed


def test_every_file_read_is_pinned_with_one_tree_call(github_pr: GitHubPR) -> None:
    server = github_pr.server
    manifest = "ops/plans/infra-scale/prod/hpa.yaml"
    server.push_commit(github_pr.repo, github_pr.number, {manifest: "kind: HorizontalPodAutoscaler\n"})
    github_pr.label()
    needs = req(github_pr, read_paths=(manifest, "ops/plans/infra-scale/prod/missing.yaml"))
    assert check_gate(settings_for(github_pr), needs).reason == (
        f"file ops/plans/infra-scale/prod/missing.yaml (read by the plan) not found in PR #{github_pr.number} at "
        f"head {github_pr.head_sha[:7]}")
    first = check_gate(settings_for(github_pr), req(github_pr, read_paths=(manifest,)))
    assert first.allowed and first.file_blob_shas == {manifest: blob_sha(b"kind: HorizontalPodAutoscaler\n")}
    assert server.count("GET", r"/git/trees/") == 2 and server.count("GET", r"/contents/") == 0
    server.push_commit(github_pr.repo, github_pr.number, {manifest: "kind: Secret\n"})
    # The recheck re-reads the pinned manifest even when the caller's requirement does not list it.
    again = recheck_gate(settings_for(github_pr), req(github_pr), first)
    assert not again.allowed and "head SHA changed since the check" in again.reason


@pytest.mark.parametrize(("fault", "message"), [
    ({"status": 200, "raw": "<html>maintenance</html>"}, "was not a JSON object with 'number'"),
    ({"status": 200, "raw": "{\"number\": 1,", "content_type": "application/json"}, "answer was not JSON"),
    ({"status": 301, "headers": {"Location": "/repos/acme/other/pulls/1"}}, "answered with a redirect (301)"),
    ({"status": 302, "headers": {"Location": "https://evil.example/x"}}, "answered with a redirect (302)"),
])
def test_answers_github_should_not_give_are_clean_refusals(github_pr: GitHubPR, fault: dict[str, Any],
                                                           message: str) -> None:
    github_pr.server.schema_check_enabled = False
    github_pr.label()
    github_pr.server.inject("GET", rf"/pulls/{github_pr.number}$", times=10, **fault)
    decision = check_gate(settings_for(github_pr), req(github_pr))
    assert not decision.allowed
    assert message in decision.reason
    with pytest.raises(GitHubError) as info:
        fetch_facts(settings_for(github_pr), req(github_pr))
    assert not info.value.transient


def test_a_pagination_link_to_another_host_is_not_followed(github_pr: GitHubPR) -> None:
    github_pr.server.schema_check_enabled = False
    github_pr.label()
    github_pr.server.inject("GET", r"/timeline$", 200, body=[{"event": "commented"}], times=5,
                            headers={"Link": '<http://attacker.example/steal?page=2>; rel="next"'})
    with pytest.raises(GitHubError) as info:
        fetch_facts(settings_for(github_pr), req(github_pr))
    assert "links to another host" in str(info.value) and not info.value.transient


def test_a_timeout_is_a_transient_refusal(github_pr: GitHubPR) -> None:
    github_pr.label()
    github_pr.server.inject("GET", rf"/pulls/{github_pr.number}$", None, latency=2.5, times=10)
    with pytest.raises(GitHubError) as info:
        fetch_facts(settings_for(github_pr, timeout=1, retries=1), req(github_pr))
    assert "did not answer within 1s" in str(info.value) and info.value.transient
