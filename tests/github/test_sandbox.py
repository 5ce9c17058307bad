"""The GitHub test server itself: what PyGithub calls, state, faults, log, schema conformance, command."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from github import Auth, Github, GithubException

from sandbox.github.schema import check_response
from sandbox.github.state import blob_sha
from tests.fixtures.github import PLAN_PATH, GitHubPR, GitHubServer


def gh(server: GitHubServer, login: str) -> Github:
    return Github(base_url=server.url, auth=Auth.Token(server.token_for(login)), retry=None,
                  seconds_between_requests=None, seconds_between_writes=None)


def http(server: GitHubServer, method: str, path: str, body: Any = None, token: str | None = None
         ) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def test_blob_sha_is_gits() -> None:
    assert blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    for content in (b"", b"namespace: a\n", bytes(range(256))):
        git = subprocess.run(["git", "hash-object", "--stdin"], input=content, capture_output=True, check=True)
        assert blob_sha(content) == git.stdout.decode().strip()


def test_pygithub_tour_of_every_call(github_pr: GitHubPR, schema_check: Any) -> None:
    server = github_pr.server
    github_pr.label("execute-plan", "tess")
    server.add_review(github_pr.repo, github_pr.number, "walt")
    g = gh(server, "alice")
    repo = g.get_repo(github_pr.repo)
    assert (repo.full_name, repo.default_branch, repo.fork) == ("acme/infra", "main", False)
    pr = repo.get_pull(github_pr.number)
    assert [lb.name for lb in pr.labels] == ["execute-plan"]
    assert (pr.state, pr.merged, pr.draft, pr.mergeable, pr.number) == ("open", False, False, True, 1)
    assert pr.head.sha == github_pr.head_sha and pr.head.repo.full_name == pr.base.repo.full_name
    assert pr.issue_url == f"{server.url}/repos/acme/infra/issues/1"
    events = list(pr.get_issue_events())
    assert [(e.event, e.actor.login, e.label.name) for e in events] == [("labeled", "tess", "execute-plan")]
    assert events[0].raw_data["label"]["name"] == "execute-plan"  # completes via GET issues/events/ID
    timeline = list(pr.get_issue_timeline())
    assert [(e.event, e.raw_data.get("label", {}).get("name"), e.actor.login if e.actor else None)
            for e in timeline] == [("committed", None, None), ("labeled", "execute-plan", "tess")]
    assert timeline[0].raw_data["sha"] == pr.head.sha
    tree = repo.get_git_tree(pr.head.sha, recursive=True)
    blobs = {e.path: e.sha for e in tree.tree if e.type == "blob"}
    assert blobs == {"README.md": blob_sha(b"# infra\n"), github_pr.plan_path: blob_sha(github_pr.plan_text.encode())}
    assert "ops/plans/infra-scale/prod" in {e.path for e in tree.tree if e.type == "tree"}
    assert (repo.get_collaborator_permission("tess"), repo.get_collaborator_role_name("tess")) == ("read", "triage")
    assert (repo.get_collaborator_permission("mona"), repo.get_collaborator_role_name("mona")) == ("write", "maintain")
    assert repo.get_collaborator_permission("eve") == "read"  # public repository
    assert [(r.user.login, r.state, r.commit_id) for r in pr.get_reviews()] == [("walt", "APPROVED", pr.head.sha)]
    comment = pr.create_issue_comment("first")
    comment.edit("edited")
    assert [c.body for c in pr.get_issue_comments()] == ["edited"]
    contents = repo.get_contents(PLAN_PATH, ref=pr.head.sha)
    assert not isinstance(contents, list)
    assert contents.decoded_content.decode() == github_pr.plan_text
    assert contents.sha == blob_sha(github_pr.plan_text.encode())
    listing = repo.get_contents("ops/plans", ref="infra-scale/prod")
    assert isinstance(listing, list) and [c.path for c in listing] == ["ops/plans/infra-scale"]
    pr.add_to_labels("needs-review")
    pr.remove_from_labels("needs-review")
    assert g.get_user().login == "alice"
    assert g.get_rate_limit().resources.core.limit == 5000
    assert repo.get_issue(github_pr.number).pull_request is not None
    schema_check()


def test_infra_scale_calls(github_pr: GitHubPR) -> None:
    """Find the open PR for a branch, else create branch + files + PR; later update files and the PR body."""
    server = github_pr.server
    repo = gh(server, "walt").get_repo(github_pr.repo)
    assert list(repo.get_pulls(state="open", head="acme:infra-scale/staging")) == []
    main = repo.get_git_ref("heads/main")
    created = repo.create_git_ref("refs/heads/infra-scale/staging", main.object.sha)
    assert created.ref == "refs/heads/infra-scale/staging"
    path = "ops/plans/infra-scale/staging/plan.yaml"
    result = repo.create_file(path, "plan", "namespace: a\n", branch="infra-scale/staging")
    assert result["content"].sha == blob_sha(b"namespace: a\n")
    pr = repo.create_pull(base="main", head="infra-scale/staging", title="infra-scale: staging", body="v1")
    assert pr.head.sha == result["commit"].sha
    found = list(repo.get_pulls(state="open", head="acme:infra-scale/staging"))
    assert [p.number for p in found] == [pr.number]
    current = repo.get_contents(path, ref="infra-scale/staging")
    assert not isinstance(current, list)
    updated = repo.update_file(path, "plan v2", "namespace: b\n", current.sha, branch="infra-scale/staging")
    pr.edit(body="v2")
    again = repo.get_pull(pr.number)
    assert (again.body, again.head.sha) == ("v2", updated["commit"].sha)  # push moved the PR head
    with pytest.raises(GithubException) as stale:
        repo.update_file(path, "stale", "namespace: c\n", current.sha, branch="infra-scale/staging")
    assert stale.value.status == 409
    with pytest.raises(GithubException) as duplicate:
        repo.create_pull(base="main", head="infra-scale/staging", title="again", body="")
    assert duplicate.value.status == 422
    assert server.count("POST", r"/pulls$") == 2 and server.count("PUT", r"/contents/") == 3


def test_labels_body_forms_and_permissions(github_pr: GitHubPR) -> None:
    server, path = github_pr.server, f"/repos/acme/infra/issues/{github_pr.number}/labels"
    status, _, body = http(server, "POST", path, {"labels": ["a", {"name": "b"}]}, server.token_for("tess"))
    assert status == 200 and [lb["name"] for lb in body] == ["a", "b"]
    status, _, body = http(server, "POST", path, ["c"], server.token_for("walt"))
    assert status == 200 and [lb["name"] for lb in body] == ["a", "b", "c"]
    status, _, _ = http(server, "POST", path, ["d"], server.token_for("rita"))  # read may not label
    assert status == 403
    status, _, body = http(server, "DELETE", f"{path}/b", token=server.token_for("tess"))
    assert status == 200 and [lb["name"] for lb in body] == ["a", "c"]
    status, _, body = http(server, "DELETE", f"{path}/b", token=server.token_for("tess"))
    assert (status, body["message"]) == (404, "Label does not exist")
    events = server.snapshot(github_pr.repo, github_pr.number).events
    assert [(e.event, e.label, e.actor) for e in events] == [
        ("labeled", "a", "tess"), ("labeled", "b", "tess"), ("labeled", "c", "walt"), ("unlabeled", "b", "tess")]


def test_auth_errors(github_server: GitHubServer) -> None:
    status, _, body = http(github_server, "GET", "/user", token="ghp_wrong")
    assert (status, body["message"]) == (401, "Bad credentials") and "documentation_url" in body
    status, _, body = http(github_server, "GET", "/user")
    assert (status, body["message"]) == (401, "Requires authentication")


def test_pagination_links(github_pr: GitHubPR) -> None:
    server = github_pr.server
    for i in range(5):
        server.add_comment(github_pr.repo, github_pr.number, "alice", f"c{i}")
    token = server.token_for("alice")
    status, headers, body = http(server, "GET", "/repos/acme/infra/issues/1/comments?per_page=2", token=token)
    assert status == 200 and [c["body"] for c in body] == ["c0", "c1"]
    assert 'rel="next"' in headers["Link"] and "page=3" in headers["Link"]
    bodies = [c.body for c in gh(server, "alice").get_repo("acme/infra").get_issue(1).get_comments()]
    assert bodies == [f"c{i}" for i in range(5)]


def test_faults_python_api(github_pr: GitHubPR) -> None:
    server, token = github_pr.server, github_pr.server.token_for("alice")
    server.inject("GET", r"/pulls/1$", 503, retry_after=7, times=1)
    status, headers, body = http(server, "GET", "/repos/acme/infra/pulls/1", token=token)
    assert (status, headers["Retry-After"], body["message"]) == (503, "7", "Service Unavailable")
    assert http(server, "GET", "/repos/acme/infra/pulls/1", token=token)[0] == 200  # only the next one
    server.inject("GET", r"/pulls/1$", 403, rate_limit_reset_in=30)
    status, headers, body = http(server, "GET", "/repos/acme/infra/pulls/1", token=token)
    assert status == 403 and headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) >= int(time.time()) + 28
    assert body["message"].startswith("API rate limit exceeded")
    server.inject("GET", r"/user$", None, latency=0.3)
    started = time.monotonic()
    assert http(server, "GET", "/user", token=token)[0] == 200
    assert time.monotonic() - started >= 0.3
    server.inject("POST", r"/comments$", 500, store_then_fail=True)
    assert http(server, "POST", "/repos/acme/infra/issues/1/comments", {"body": "x"}, token)[0] == 500
    assert [c.body for c in server.issue_comments("acme/infra", 1)] == ["x"]
    assert [r.faulted for r in server.requests("POST")] == [True]
    assert server.count("GET", r"/pulls/1$") == 3


def test_faults_and_log_over_http(github_pr: GitHubPR) -> None:
    server, token = github_pr.server, github_pr.server.token_for("alice")
    status, _, _ = http(server, "POST", "/_sandbox/faults", {"method": "GET", "path": "/user$", "status": 502,
                                                               "times": 2})
    assert status == 201
    assert [http(server, "GET", "/user", token=token)[0] for _ in range(3)] == [502, 502, 200]
    status, _, records = http(server, "GET", "/_sandbox/requests")
    assert [(r["method"], r["path"], r["status"]) for r in records] == [("GET", "/user", 502)] * 2 + [
        ("GET", "/user", 200)]
    http(server, "POST", "/_sandbox/faults", {"path": ".*", "status": 500, "times": 5})
    assert http(server, "DELETE", "/_sandbox/faults")[0] == 200
    assert http(server, "GET", "/user", token=token)[0] == 200


def test_schema_check_catches_a_lean_body(github_pr: GitHubPR) -> None:
    server = github_pr.server
    github_pr.label()
    status, _, pr = http(server, "GET", "/repos/acme/infra/pulls/1", token=server.token_for("alice"))
    template = "/repos/{owner}/{repo}/pulls/{pull_number}"
    assert status == 200 and check_response(template, "get", 200, pr) == []
    lean = {k: pr[k] for k in ("number", "state", "labels", "head")}
    assert len(check_response(template, "get", 200, lean)) > 0
    _, _, events = http(server, "GET", "/repos/acme/infra/issues/1/events", token=server.token_for("alice"))
    events_template = "/repos/{owner}/{repo}/issues/{issue_number}/events"
    assert check_response(events_template, "get", 200, events) == []
    del events[0]["label"]
    assert any("labeled-issue-event" in p for p in check_response(events_template, "get", 200, events))


def test_every_response_so_far_conforms(github_pr: GitHubPR, schema_check: Any) -> None:
    server = github_pr.server
    github_pr.label()
    server.merge_pr(github_pr.repo, github_pr.number)
    fork = server.open_pr(github_pr.repo, head="f", fork_owner="mallory", files={"x": "1"}, draft=True)
    repo = gh(server, "alice").get_repo(github_pr.repo)
    for number in (github_pr.number, fork):
        pr = repo.get_pull(number)
        list(pr.get_issue_events())
        list(pr.get_issue_timeline())
        pr.as_issue()
    gh(server, "mallory").get_repo("mallory/infra")
    with pytest.raises(GithubException):
        repo.get_pull(42)
    schema_check()


def test_command_prints_ready_and_serves_demo() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.github.cli", "--port", "0", "--seed", "demo"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        url = next(x.split("=", 1)[1] for x in lines if x.startswith("GITHUB_API_URL="))
        request = urllib.request.Request(f"{url}/repos/acme/infra/pulls/1",
                                         headers={"Authorization": "token ghp_demo_alice"})
        with urllib.request.urlopen(request, timeout=5) as response:
            pr = json.loads(response.read())
        assert pr["head"]["ref"] == "infra-scale/prod" and pr["url"].startswith(url)
        content = base64.b64decode(json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{url}/repos/acme/infra/contents/ops/plans/infra-scale/prod/plan.yaml?ref=infra-scale/prod",
            headers={"Authorization": "token ghp_demo_alice"}), timeout=5).read())["content"])
        assert content.startswith(b"namespace: demo")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_timeline_lists_commits_force_pushes_and_labels_in_time_order(github_pr: GitHubPR, schema_check: Any) -> None:
    server = github_pr.server
    first = github_pr.head_sha
    github_pr.label()
    second = server.push_commit(github_pr.repo, github_pr.number, {"README.md": "two\n"})
    rewritten = server.force_push(github_pr.repo, github_pr.number, {"README.md": "three\n"}, actor="walt")
    server.set_draft(github_pr.repo, github_pr.number, True)
    status, _, timeline = http(server, "GET", f"/repos/acme/infra/issues/{github_pr.number}/timeline?per_page=100",
                               token=server.token_for("alice"))
    assert status == 200
    assert [(item["event"], item.get("sha") or item.get("commit_id")) for item in timeline] == [
        ("labeled", None), ("committed", rewritten), ("head_ref_force_pushed", rewritten)], \
        "the force-push dropped the old commits from the branch; its new commit is listed, then the push"
    assert first != second != rewritten
    assert timeline[2]["actor"]["login"] == "walt"
    _, _, events = http(server, "GET", f"/repos/acme/infra/issues/{github_pr.number}/events",
                        token=server.token_for("alice"))
    assert [event["event"] for event in events] == ["labeled", "head_ref_force_pushed"], "no commits in events"
    _, _, pull = http(server, "GET", f"/repos/acme/infra/pulls/{github_pr.number}", token=server.token_for("alice"))
    assert (pull["draft"], pull["head"]["sha"]) == (True, rewritten)
    schema_check()
