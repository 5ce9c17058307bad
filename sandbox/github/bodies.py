"""Response bodies shaped like GitHub's (valid against the vendored OpenAPI schema), URLs pointing at the server."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

from .state import (
    LEGACY_PERMISSION,
    Comment,
    Commit,
    CommitStatus,
    Event,
    GitHubState,
    Issue,
    Label,
    Repo,
    Review,
    User,
    blob_sha,
    iso,
    tree_sha,
)

JSON = dict[str, Any]


def _line_count(content: bytes | None) -> int:
    return len(content.splitlines()) if content is not None else 0


def _node(kind: str, ident: int) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode()


class Bodies:
    def __init__(self, state: GitHubState, base: str) -> None:
        self.s = state
        self.base = base.rstrip("/")

    # ------------------------------------------------------------------ users
    def user(self, login: str) -> JSON:
        u = self.s.users.get(login) or User(0, login)
        api = f"{self.base}/users/{login}"
        return {
            "login": u.login, "id": u.id, "node_id": _node("U", u.id),
            "avatar_url": f"{self.base}/avatars/{login}", "gravatar_id": "", "url": api,
            "html_url": f"{self.base}/{login}", "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}", "received_events_url": f"{api}/received_events",
            "type": u.type, "site_admin": False, "user_view_type": "public",
        }

    def private_user(self, login: str) -> JSON:
        now = iso(time.time())
        body = self.user(login)
        body["user_view_type"] = "private"
        body.update({
            "name": self.s.users[login].name, "company": None, "blog": "", "location": None, "email": None,
            "hireable": None, "bio": None, "twitter_username": None, "public_repos": 0, "public_gists": 0,
            "followers": 0, "following": 0, "created_at": now, "updated_at": now, "private_gists": 0,
            "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0, "collaborators": 0,
            "two_factor_authentication": True,
        })
        return body

    def collaborator(self, login: str, role: str) -> JSON:
        body = self.user(login)
        body["permissions"] = {
            "pull": True, "triage": role != "read", "push": role in ("write", "maintain", "admin"),
            "maintain": role in ("maintain", "admin"), "admin": role == "admin",
        }
        body["role_name"] = role
        return body

    # ------------------------------------------------------------ repositories
    def repository(self, repo: Repo, full: bool = False) -> JSON:
        api = f"{self.base}/repos/{repo.full_name}"
        html = f"{self.base}/{repo.full_name}"
        created = iso(repo.created)
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        body: JSON = {
            "id": repo.id, "node_id": _node("R", repo.id), "name": repo.name, "full_name": repo.full_name,
            "owner": self.user(repo.owner), "private": repo.private, "html_url": html, "description": None,
            "fork": repo.fork_of is not None, "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}", "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}", "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}", "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}", "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors", "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads", "events_url": f"{api}/events", "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}", "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}", "git_url": f"{html}.git",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}", "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}", "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages", "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}", "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"{html}.git", "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}", "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription", "tags_url": f"{api}/tags", "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}", "clone_url": f"{html}.git", "mirror_url": None,
            "hooks_url": f"{api}/hooks", "svn_url": html, "homepage": None, "language": None,
            "forks_count": 0, "stargazers_count": 0, "watchers_count": 0, "size": 1,
            "default_branch": repo.default_branch, "open_issues_count": open_issues, "topics": [],
            "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False,
            "has_downloads": True, "has_discussions": False, "archived": False, "disabled": False,
            "visibility": "private" if repo.private else "public", "pushed_at": created,
            "created_at": created, "updated_at": created, "allow_forking": True, "is_template": False,
            "web_commit_signoff_required": False, "forks": 0, "open_issues": open_issues, "watchers": 0,
            "license": None,
        }
        if full:
            body["network_count"] = 0
            body["subscribers_count"] = 0
            if repo.fork_of is not None:
                parent = self.s.repos[repo.fork_of]
                body["parent"] = self.repository(parent)
                body["source"] = self.repository(parent)
        return body

    # ------------------------------------------------------------------ labels
    def label(self, repo: Repo, label: Label) -> JSON:
        return {
            "id": label.id, "node_id": _node("L", label.id),
            "url": f"{self.base}/repos/{repo.full_name}/labels/{quote(label.name, safe='')}",
            # "" rather than null: the pull-request-simple schema does not allow a null label description
            "name": label.name, "description": label.description or "", "color": label.color, "default": False,
        }

    def labels(self, repo: Repo, issue: Issue) -> list[JSON]:
        return [self.label(repo, repo.labels[name]) for name in issue.labels]

    # ------------------------------------------------------------ issues / PRs
    def _association(self, repo: Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if login in repo.collaborators else "NONE"

    def issue(self, repo: Repo, issue: Issue) -> JSON:
        api = f"{self.base}/repos/{repo.full_name}/issues/{issue.number}"
        body: JSON = {
            "id": issue.id, "node_id": _node("I", issue.id), "url": api,
            "repository_url": f"{self.base}/repos/{repo.full_name}",
            "labels_url": f"{api}/labels{{/name}}", "comments_url": f"{api}/comments",
            "events_url": f"{api}/events", "html_url": f"{self.base}/{repo.full_name}/issues/{issue.number}",
            "number": issue.number, "state": issue.state, "title": issue.title,
            "body": issue.body, "user": self.user(issue.user), "labels": self.labels(repo, issue),
            "assignee": None, "assignees": [], "milestone": None, "locked": False,
            "active_lock_reason": None, "comments": len(issue.comments), "closed_at": _t(issue.closed_at),
            "created_at": iso(issue.created), "updated_at": iso(issue.updated), "closed_by": None,
            "author_association": self._association(repo, issue.user),
        }
        if issue.is_pull:
            pulls = f"{self.base}/repos/{repo.full_name}/pulls/{issue.number}"
            body["pull_request"] = {
                "url": pulls, "html_url": f"{self.base}/{repo.full_name}/pull/{issue.number}",
                "diff_url": f"{self.base}/{repo.full_name}/pull/{issue.number}.diff",
                "patch_url": f"{self.base}/{repo.full_name}/pull/{issue.number}.patch",
                "merged_at": _t(issue.merged_at),
            }
            body["draft"] = issue.draft
        return body

    def _branch(self, repo_name: str | None, ref: str, sha: str, fallback_owner: str) -> JSON:
        owner = repo_name.split("/")[0] if repo_name else fallback_owner
        return {
            "label": f"{owner}:{ref}", "ref": ref, "sha": sha, "user": self.user(owner),
            "repo": self.repository(self.s.repos[repo_name]) if repo_name else None,
        }

    def pull_simple(self, repo: Repo, pr: Issue) -> JSON:
        api = f"{self.base}/repos/{repo.full_name}/pulls/{pr.number}"
        issue_api = f"{self.base}/repos/{repo.full_name}/issues/{pr.number}"
        html = f"{self.base}/{repo.full_name}/pull/{pr.number}"
        statuses = f"{self.base}/repos/{repo.full_name}/statuses/{pr.head_sha}"
        base_sha = repo.branches.get(pr.base_ref, pr.head_sha)
        return {
            "url": api, "id": pr.id, "node_id": _node("PR", pr.id), "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue_api,
            "commits_url": f"{api}/commits", "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self.base}/repos/{repo.full_name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_api}/comments", "statuses_url": statuses, "number": pr.number,
            "state": pr.state, "locked": False, "title": pr.title, "user": self.user(pr.user), "body": pr.body,
            "labels": self.labels(repo, pr), "milestone": None, "active_lock_reason": None,
            "created_at": iso(pr.created), "updated_at": iso(pr.updated), "closed_at": _t(pr.closed_at),
            "merged_at": _t(pr.merged_at), "merge_commit_sha": pr.merge_commit_sha, "assignee": None,
            "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": self._branch(pr.head_repo, pr.head_ref, pr.head_sha, pr.user),
            "base": self._branch(repo.full_name, pr.base_ref, base_sha, repo.owner),
            "_links": {
                "self": {"href": api}, "html": {"href": html}, "issue": {"href": issue_api},
                "comments": {"href": f"{issue_api}/comments"}, "review_comments": {"href": f"{api}/comments"},
                "review_comment": {"href": f"{self.base}/repos/{repo.full_name}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/commits"}, "statuses": {"href": statuses},
            },
            "author_association": self._association(repo, pr.user), "auto_merge": None, "draft": pr.draft,
        }

    def pull(self, repo: Repo, pr: Issue) -> JSON:
        body = self.pull_simple(repo, pr)
        files = self._changed(repo, pr)
        body.update({
            "merged": pr.merged, "mergeable": None if pr.merged or pr.state == "closed" else True,
            "rebaseable": True, "mergeable_state": "clean" if pr.state == "open" else "unknown",
            "merged_by": self.user(pr.merged_by) if pr.merged_by else None,
            "comments": len(pr.comments), "review_comments": 0, "maintainer_can_modify": False,
            "commits": self._commit_count(repo, pr), "additions": len(files), "deletions": 0,
            "changed_files": len(files),
        })
        return body

    def _changed(self, repo: Repo, pr: Issue) -> list[str]:
        base = self.s.commits[repo.branches[pr.base_ref]].tree
        head = self.s.commits[pr.head_sha].tree
        return sorted(p for p in set(base) | set(head) if base.get(p) != head.get(p))

    def _commit_count(self, repo: Repo, pr: Issue) -> int:
        base = repo.branches[pr.base_ref]
        count, sha = 0, pr.head_sha
        while sha and sha != base and count < 250:
            count += 1
            sha = self.s.commits[sha].parent or ""
        return max(count, 1)

    # ------------------------------------------------------------------ events
    def event(self, repo: Repo, event: Event) -> JSON:
        body: JSON = {
            "id": event.id, "node_id": _node("E", event.id),
            "url": f"{self.base}/repos/{repo.full_name}/issues/events/{event.id}",
            "actor": self.user(event.actor), "event": event.event, "commit_id": event.commit_id,
            "commit_url": (f"{self.base}/repos/{repo.full_name}/commits/{event.commit_id}"
                           if event.commit_id else None),
            "created_at": iso(event.at), "performed_via_github_app": None,
        }
        if event.label is not None:
            label = repo.labels.get(event.label)
            body["label"] = {"name": event.label, "color": label.color if label else "ededed"}
        if event.event in ("closed", "reopened"):
            body["state_reason"] = None
        return body

    def committed(self, repo: Repo, commit: Commit) -> JSON:
        """A timeline `committed` item (git's view of a commit: no actor, no created_at)."""
        api = f"{self.base}/repos/{repo.full_name}/git/commits/{commit.sha}"
        person = {"name": commit.author, "email": f"{commit.author}@users.noreply.example", "date": iso(commit.at)}
        parents = [commit.parent] if commit.parent else []
        return {
            "event": "committed", "sha": commit.sha, "node_id": _node("C", int(commit.sha[:8], 16)), "url": api,
            "html_url": f"{self.base}/{repo.full_name}/commit/{commit.sha}", "author": person,
            "committer": person, "message": commit.message,
            "tree": {"sha": tree_sha(commit), "url": self._tree_url(repo, commit)},
            "parents": [{"sha": p, "url": f"{self.base}/repos/{repo.full_name}/git/commits/{p}",
                         "html_url": f"{self.base}/{repo.full_name}/commit/{p}"} for p in parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
        }

    def git_tree(self, repo: Repo, commit: Commit) -> JSON:
        """GET git/trees/SHA?recursive=1: every file and every directory above one, as git lists them."""
        entries: dict[str, JSON] = {}
        for path, content in sorted(commit.tree.items()):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                entries.setdefault(directory, {"path": directory, "mode": "040000", "type": "tree",
                                               "sha": blob_sha(directory.encode()),
                                               "url": f"{self.base}/repos/{repo.full_name}/git/trees/"
                                                      f"{blob_sha(directory.encode())}"})
            sha = blob_sha(content)
            entries[path] = {"path": path, "mode": "100644", "type": "blob", "sha": sha, "size": len(content),
                             "url": f"{self.base}/repos/{repo.full_name}/git/blobs/{sha}"}
        return {"sha": tree_sha(commit), "url": self._tree_url(repo, commit),
                "tree": [entries[path] for path in sorted(entries)], "truncated": False}

    def _tree_url(self, repo: Repo, commit: Commit) -> str:
        return f"{self.base}/repos/{repo.full_name}/git/trees/{tree_sha(commit)}"

    def issue_event(self, repo: Repo, issue: Issue, event: Event) -> JSON:
        """GET /repos/o/r/issues/events/ID: the event plus the issue it belongs to."""
        body = self.event(repo, event)
        body["issue"] = self.issue(repo, issue)
        return body

    # ---------------------------------------------------------- reviews, comments
    def review(self, repo: Repo, pr: Issue, review: Review) -> JSON:
        api = f"{self.base}/repos/{repo.full_name}/pulls/{pr.number}"
        html = f"{self.base}/{repo.full_name}/pull/{pr.number}#pullrequestreview-{review.id}"
        return {
            "id": review.id, "node_id": _node("PRR", review.id), "user": self.user(review.user),
            "body": review.body, "state": review.state, "html_url": html, "pull_request_url": api,
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "submitted_at": iso(review.at), "commit_id": review.commit_id,
            "author_association": self._association(repo, review.user),
        }

    def comment(self, repo: Repo, comment: Comment) -> JSON:
        return {
            "id": comment.id, "node_id": _node("IC", comment.id),
            "url": f"{self.base}/repos/{repo.full_name}/issues/comments/{comment.id}",
            "html_url": f"{self.base}/{repo.full_name}/issues/{comment.number}#issuecomment-{comment.id}",
            "body": comment.body, "user": self.user(comment.user), "created_at": iso(comment.created),
            "updated_at": iso(comment.updated),
            "issue_url": f"{self.base}/repos/{repo.full_name}/issues/{comment.number}",
            "author_association": self._association(repo, comment.user),
        }

    def commit_status(self, repo: Repo, status: CommitStatus) -> JSON:
        return {
            "url": f"{self.base}/repos/{repo.full_name}/statuses/{status.sha}",
            "avatar_url": f"{self.base}/avatars/{status.creator}", "id": status.id,
            "node_id": _node("SC", status.id), "state": status.state, "description": status.description,
            "target_url": status.target_url, "context": status.context, "created_at": iso(status.at),
            "updated_at": iso(status.at), "creator": self.user(status.creator),
        }

    def combined_status(self, repo: Repo, sha: str, latest: list[CommitStatus]) -> JSON:
        """GitHub's rule: failure if any is error/failure, pending if any is pending (or none exist), else
        success."""
        states = {status.state for status in latest}
        state = "failure" if states & {"error", "failure"} else "pending" if "pending" in states or not states \
            else "success"
        simple = [{key: value for key, value in self.commit_status(repo, status).items() if key != "creator"}
                  for status in latest]
        return {"state": state, "statuses": simple, "sha": sha, "total_count": len(latest),
                "repository": self.repository(repo), "commit_url": f"{self.base}/repos/{repo.full_name}/commits/{sha}",
                "url": f"{self.base}/repos/{repo.full_name}/commits/{sha}/status"}

    def pull_file(self, repo: Repo, path: str, base: bytes | None, head: bytes | None, head_sha: str) -> JSON:
        status = "added" if base is None else "removed" if head is None else "modified"
        additions, deletions = _line_count(head), _line_count(base)
        raw = f"{self.base}/{repo.full_name}/raw/{head_sha}/{quote(path)}"
        return {"sha": blob_sha(head if head is not None else base or b""), "filename": path, "status": status,
                "additions": additions, "deletions": deletions, "changes": additions + deletions,
                "blob_url": f"{self.base}/{repo.full_name}/blob/{head_sha}/{quote(path)}", "raw_url": raw,
                "contents_url": f"{self.base}/repos/{repo.full_name}/contents/{quote(path)}?ref={head_sha}"}

    # ----------------------------------------------------------------- git, contents
    def git_ref(self, repo: Repo, branch: str) -> JSON:
        sha = repo.branches[branch]
        return {
            "ref": f"refs/heads/{branch}", "node_id": _node("REF", hash(branch) & 0xFFFF),
            "url": f"{self.base}/repos/{repo.full_name}/git/refs/heads/{branch}",
            "object": {"type": "commit", "sha": sha,
                       "url": f"{self.base}/repos/{repo.full_name}/git/commits/{sha}"},
        }

    def content_file(self, repo: Repo, path: str, content: bytes, ref: str) -> JSON:
        sha = blob_sha(content)
        api = f"{self.base}/repos/{repo.full_name}/contents/{quote(path)}?ref={quote(ref, safe='')}"
        html = f"{self.base}/{repo.full_name}/blob/{ref}/{quote(path)}"
        git = f"{self.base}/repos/{repo.full_name}/git/blobs/{sha}"
        encoded = base64.encodebytes(content).decode()
        return {
            "type": "file", "encoding": "base64", "size": len(content), "name": path.rsplit("/", 1)[-1],
            "path": path, "content": encoded, "sha": sha, "url": api, "git_url": git, "html_url": html,
            "download_url": f"{self.base}/raw/{repo.full_name}/{ref}/{quote(path)}",
            "_links": {"self": api, "git": git, "html": html},
        }

    def content_dir(self, repo: Repo, path: str, tree: dict[str, bytes], ref: str) -> list[JSON]:
        prefix = f"{path.rstrip('/')}/" if path else ""
        entries: dict[str, JSON] = {}
        for p, content in sorted(tree.items()):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):]
            name = rest.split("/", 1)[0]
            full = prefix + name
            is_dir = "/" in rest
            api = f"{self.base}/repos/{repo.full_name}/contents/{quote(full)}?ref={quote(ref, safe='')}"
            html = f"{self.base}/{repo.full_name}/{'tree' if is_dir else 'blob'}/{ref}/{quote(full)}"
            sha = blob_sha(b"" if is_dir else content)
            git = f"{self.base}/repos/{repo.full_name}/git/{'trees' if is_dir else 'blobs'}/{sha}"
            entries.setdefault(name, {
                "type": "dir" if is_dir else "file", "size": 0 if is_dir else len(content), "name": name,
                "path": full, "sha": sha, "url": api, "git_url": git, "html_url": html,
                "download_url": None if is_dir else f"{self.base}/raw/{repo.full_name}/{ref}/{quote(full)}",
                "_links": {"self": api, "git": git, "html": html},
            })
        return list(entries.values())

    def file_commit(self, repo: Repo, path: str, content: bytes, branch: str, commit_sha: str) -> JSON:
        commit = self.s.commits[commit_sha]
        api = f"{self.base}/repos/{repo.full_name}/git/commits/{commit_sha}"
        person = {"date": iso(commit.at), "name": commit.author, "email": f"{commit.author}@users.noreply"}
        parents = []
        if commit.parent:
            parents.append({"url": f"{self.base}/repos/{repo.full_name}/git/commits/{commit.parent}",
                            "html_url": f"{self.base}/{repo.full_name}/commit/{commit.parent}",
                            "sha": commit.parent})
        tree_sha = blob_sha(repr(sorted(commit.tree)).encode())
        return {
            "content": self.content_file(repo, path, content, branch),
            "commit": {
                "sha": commit_sha, "node_id": _node("C", int(commit_sha[:6], 16)), "url": api,
                "html_url": f"{self.base}/{repo.full_name}/commit/{commit_sha}", "author": person,
                "committer": person, "message": commit.message,
                "tree": {"url": f"{self.base}/repos/{repo.full_name}/git/trees/{tree_sha}", "sha": tree_sha},
                "parents": parents,
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                 "verified_at": None},
            },
        }

    def permission(self, login: str, role: str | None, private: bool) -> JSON:
        if role is None:
            base = "none" if private else "read"
            return {"permission": base, "role_name": base, "user": self.collaborator(login, "read")}
        return {"permission": LEGACY_PERMISSION[role], "role_name": role, "user": self.collaborator(login, role)}

    def rate_limit(self, remaining: int, reset: int) -> JSON:
        core = {"limit": 5000, "remaining": remaining, "reset": reset, "used": 5000 - remaining}
        other = {"limit": 5000, "remaining": 5000, "reset": reset, "used": 0}
        return {
            "resources": {"core": core, "search": dict(other, limit=30, remaining=30),
                          "graphql": dict(other)},
            "rate": core,
        }


def _t(ts: float | None) -> str | None:
    return iso(ts) if ts is not None else None
