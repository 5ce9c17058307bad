"""State of the GitHub test server: users, tokens, repositories, git objects, pull requests and their history.

Everything here is plain Python guarded by one re-entrant lock; the HTTP layer (server.py) and the seeding API
(``GitHubState`` methods, re-exported by ``GitHubSandbox``) both go through it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ROLES = ("read", "triage", "write", "maintain", "admin")
# GitHub's `permission` field is the legacy base role: maintain -> write, triage -> read.
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}


class SandboxError(Exception):
    """Raised by the seeding API and turned into a GitHub-style error response by the HTTP layer."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def blob_sha(content: bytes) -> str:
    """The git blob id of ``content``: sha1("blob <len>\\0" + content)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def tree_sha(commit: Commit) -> str:
    """A stable id for the commit's tree (not git's real tree hash, which nothing here needs)."""
    listing = "\n".join(f"{path} {blob_sha(content)}" for path, content in sorted(commit.tree.items()))
    return hashlib.sha1(b"tree\0" + listing.encode()).hexdigest()


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class User:
    id: int
    login: str
    type: str = "User"
    name: str | None = None


@dataclass
class Commit:
    sha: str
    tree: dict[str, bytes]
    parent: str | None
    message: str
    author: str
    at: float


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class Event:
    id: int
    event: str  # labeled, unlabeled, closed, reopened, merged, head_ref_force_pushed, base_ref_changed ...
    actor: str
    at: float
    label: str | None = None
    commit_id: str | None = None


@dataclass
class Comment:
    id: int
    number: int
    user: str
    body: str
    created: float
    updated: float


@dataclass
class CommitStatus:
    """One POST /statuses/{sha}: GitHub keeps every one; the newest per context is the commit's state for it."""

    id: int
    sha: str
    state: str  # error, failure, pending, success
    context: str
    description: str | None
    target_url: str | None
    creator: str
    at: float


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit_id: str
    body: str
    at: float


@dataclass
class Issue:
    """An issue or a pull request (GitHub numbers both in one sequence)."""

    id: int
    number: int
    title: str
    body: str | None
    user: str
    created: float
    updated: float
    is_pull: bool = False
    state: str = "open"
    closed_at: float | None = None
    labels: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    comments: list[int] = field(default_factory=list)
    # pull request only
    draft: bool = False
    merged: bool = False
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    head_repo: str | None = None  # full name; None when the fork was deleted
    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = "main"
    reviews: list[Review] = field(default_factory=list)


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool = False
    fork_of: str | None = None
    default_branch: str = "main"
    created: float = 0.0
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role
    labels: dict[str, Label] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    issues: dict[int, Issue] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitHubState:
    """The whole server state plus the seeding API tests use."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.tokens: dict[str, str] = {}
        self.repos: dict[str, Repo] = {}
        self.commits: dict[str, Commit] = {}  # shared object store: forks and base see the same commits
        self.comments: dict[str, dict[int, Comment]] = {}  # repo full name -> id -> comment
        self.statuses: dict[str, list[CommitStatus]] = {}  # repo full name -> statuses, oldest first
        self._next_id = 1000
        self._clock_last = 0.0

    # ----------------------------------------------------------------- helpers
    def next_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def now(self) -> float:
        """Monotonic wall-clock seconds: later events never sort before earlier ones."""
        with self.lock:
            t = max(time.time(), self._clock_last + 0.001)
            self._clock_last = t
            return t

    def repo(self, full_name: str) -> Repo:
        try:
            return self.repos[full_name]
        except KeyError:
            raise SandboxError(404, "Not Found") from None

    def issue(self, full_name: str, number: int) -> Issue:
        try:
            return self.repo(full_name).issues[number]
        except KeyError:
            raise SandboxError(404, "Not Found") from None

    def pull(self, full_name: str, number: int) -> Issue:
        issue = self.issue(full_name, number)
        if not issue.is_pull:
            raise SandboxError(404, "Not Found")
        return issue

    def role_of(self, full_name: str, login: str) -> str | None:
        """The collaborator role (admin/maintain/write/triage/read) or None for a non-collaborator."""
        repo = self.repo(full_name)
        if login == repo.owner:
            return "admin"
        return repo.collaborators.get(login)

    def require_role(self, full_name: str, login: str, role: str) -> None:
        have = self.role_of(full_name, login)
        if have is None and not self.repo(full_name).private:
            have = "read"
        if have is None:
            raise SandboxError(404, "Not Found")
        if ROLES.index(have) < ROLES.index(role):
            raise SandboxError(403, f"Must have {role} access to repository")

    def make_commit(self, parent: str | None, changes: dict[str, bytes | str | None], message: str,
                    author: str, sha: str | None = None) -> str:
        """Store a commit (tree = parent's tree with ``changes``; None deletes a path). ``sha`` forces its id."""
        with self.lock:
            tree = dict(self.commits[parent].tree) if parent else {}
            for path, content in changes.items():
                if content is None:
                    tree.pop(path, None)
                else:
                    tree[path] = content.encode() if isinstance(content, str) else content
            at = self.now()
            seed = f"{parent}\n{sorted((p, blob_sha(c)) for p, c in tree.items())}\n{message}\n{at}"
            sha = sha or hashlib.sha1(seed.encode()).hexdigest()
            if sha in self.commits:
                raise SandboxError(422, f"commit {sha} already exists")
            self.commits[sha] = Commit(sha, tree, parent, message, author, at)
            return sha

    def resolve(self, full_name: str, ref: str | None) -> str:
        """Branch name, ``heads/x``, ``refs/heads/x`` or a commit sha -> commit sha."""
        repo = self.repo(full_name)
        ref = ref or repo.default_branch
        for prefix in ("refs/heads/", "heads/"):
            if ref.startswith(prefix):
                ref = ref[len(prefix):]
        if ref in repo.branches:
            return repo.branches[ref]
        if ref in self.commits:
            return ref
        raise SandboxError(404, f"No commit found for the ref {ref}")

    def _label(self, repo: Repo, name: str) -> Label:
        if name not in repo.labels:
            repo.labels[name] = Label(self.next_id(), name)
        return repo.labels[name]

    # ------------------------------------------------------------- seeding API
    def add_user(self, login: str, token: str | None = None, *, type: str = "User") -> str:
        """Create a user (idempotent) and return a token that authenticates as it."""
        with self.lock:
            if login not in self.users:
                self.users[login] = User(self.next_id(), login, type)
            if token is None:
                token = next((t for t, who in self.tokens.items() if who == login), None)
                if token is None:
                    token = "ghp_sandbox" + hashlib.sha1(f"{login}:{self._next_id}".encode()).hexdigest()[:28]
            self.tokens[token] = login
            return token

    def token_for(self, login: str) -> str:
        return self.add_user(login)

    def create_repo(self, full_name: str, *, default_branch: str = "main",
                    files: dict[str, bytes | str] | None = None, private: bool = False,
                    fork_of: str | None = None) -> Repo:
        with self.lock:
            owner, name = full_name.split("/", 1)
            self.add_user(owner)
            if full_name in self.repos:
                return self.repos[full_name]
            repo = Repo(self.next_id(), owner, name, private=private, fork_of=fork_of,
                        default_branch=default_branch, created=self.now())
            if fork_of is not None:
                repo.branches = dict(self.repo(fork_of).branches)
            else:
                repo.branches[default_branch] = self.make_commit(
                    None, dict(files or {"README.md": f"# {name}\n"}), "Initial commit", owner)
            self.repos[full_name] = repo
            self.comments[full_name] = {}
            return repo

    def add_collaborator(self, full_name: str, login: str, permission: str) -> None:
        """Grant ``login`` a role: admin, maintain, write, triage or read ("none" removes it)."""
        with self.lock:
            self.add_user(login)
            repo = self.repo(full_name)
            if permission == "none":
                repo.collaborators.pop(login, None)
                return
            if permission not in ROLES:
                raise ValueError(f"unknown permission {permission!r}")
            repo.collaborators[login] = permission

    def set_branch(self, full_name: str, branch: str, sha: str) -> None:
        with self.lock:
            self.repo(full_name).branches[branch] = sha
            self._sync_pull_heads(full_name, branch)

    def _sync_pull_heads(self, head_repo: str, branch: str) -> None:
        """A push to a branch moves the head of every open PR made from it."""
        sha = self.repos[head_repo].branches[branch]
        for repo in self.repos.values():
            for issue in repo.issues.values():
                if (issue.is_pull and issue.state == "open" and issue.head_repo == head_repo
                        and issue.head_ref == branch and issue.head_sha != sha):
                    issue.head_sha = sha
                    issue.updated = self.now()

    def open_pr(self, full_name: str, *, head: str = "feature", base: str | None = None,
                files: dict[str, bytes | str | None] | None = None, title: str = "A change",
                body: str | None = "", author: str | None = None, fork_owner: str | None = None,
                draft: bool = False, message: str = "Change", head_sha: str | None = None) -> int:
        """Create branch ``head`` (in a fork owned by ``fork_owner`` if given) with ``files`` on top of base,
        and open a pull request from it (``head_sha`` forces the head commit's id). Returns the PR number."""
        with self.lock:
            repo = self.repo(full_name)
            base = base or repo.default_branch
            author = author or fork_owner or repo.owner
            self.add_user(author)
            head_full = full_name
            if fork_owner is not None:
                head_full = f"{fork_owner}/{repo.name}"
                self.create_repo(head_full, fork_of=full_name, default_branch=repo.default_branch)
            head_repo = self.repo(head_full)
            if head not in head_repo.branches:
                head_repo.branches[head] = self.make_commit(repo.branches[base], dict(files or {}), message,
                                                            author, head_sha)
            elif files or head_sha:
                head_repo.branches[head] = self.make_commit(head_repo.branches[head], dict(files or {}), message,
                                                            author, head_sha)
            return self._create_pull(repo, head_full, head, base, title, body, author, draft)

    def _create_pull(self, repo: Repo, head_full: str, head: str, base: str, title: str, body: str | None,
                     author: str, draft: bool) -> int:
        number = len(repo.issues) + 1
        now = self.now()
        repo.issues[number] = Issue(
            id=self.next_id(), number=number, title=title, body=body, user=author, created=now, updated=now,
            is_pull=True, draft=draft, head_repo=head_full, head_ref=head,
            head_sha=self.repos[head_full].branches[head], base_ref=base)
        return number

    def add_label(self, full_name: str, number: int, label: str, actor: str) -> None:
        """Add ``label`` as ``actor``: records a ``labeled`` event by that user (no-op if already present)."""
        with self.lock:
            self.add_user(actor)
            repo = self.repo(full_name)
            issue = self.issue(full_name, number)
            self._label(repo, label)
            if label in issue.labels:
                return
            issue.labels.append(label)
            issue.events.append(Event(self.next_id(), "labeled", actor, self.now(), label=label))
            issue.updated = self.now()

    def remove_label(self, full_name: str, number: int, label: str, actor: str) -> None:
        with self.lock:
            self.add_user(actor)
            issue = self.issue(full_name, number)
            if label not in issue.labels:
                raise SandboxError(404, "Label does not exist")
            issue.labels.remove(label)
            issue.events.append(Event(self.next_id(), "unlabeled", actor, self.now(), label=label))
            issue.updated = self.now()

    def close_pr(self, full_name: str, number: int, actor: str | None = None) -> None:
        with self.lock:
            issue = self.issue(full_name, number)
            actor = actor or self.repo(full_name).owner
            issue.state, issue.closed_at = "closed", self.now()
            issue.events.append(Event(self.next_id(), "closed", actor, issue.closed_at))

    def reopen_pr(self, full_name: str, number: int, actor: str | None = None) -> None:
        with self.lock:
            issue = self.issue(full_name, number)
            if issue.merged:
                raise SandboxError(422, "Cannot reopen a merged pull request")
            actor = actor or self.repo(full_name).owner
            issue.state, issue.closed_at = "open", None
            issue.events.append(Event(self.next_id(), "reopened", actor, self.now()))

    def merge_pr(self, full_name: str, number: int, actor: str | None = None) -> str:
        with self.lock:
            repo = self.repo(full_name)
            pr = self.pull(full_name, number)
            actor = actor or repo.owner
            head_tree = self.commits[pr.head_sha].tree
            base_sha = repo.branches[pr.base_ref]
            sha = self.make_commit(base_sha, dict(head_tree), f"Merge pull request #{number}", actor)
            repo.branches[pr.base_ref] = sha
            now = self.now()
            pr.merged, pr.merged_at, pr.merged_by, pr.merge_commit_sha = True, now, actor, sha
            pr.events.append(Event(self.next_id(), "merged", actor, now, commit_id=sha))
            pr.state, pr.closed_at = "closed", now
            pr.events.append(Event(self.next_id(), "closed", actor, now, commit_id=sha))
            return sha

    def force_push(self, full_name: str, number: int, files: dict[str, bytes | str | None] | None = None,
                   message: str = "Rewritten change", actor: str | None = None) -> str:
        """Rewrite the PR's head branch: a new commit on top of the base (the old head commits are gone from
        the branch), and a ``head_ref_force_pushed`` event, as GitHub records. Returns the new head sha."""
        with self.lock:
            pr = self.pull(full_name, number)
            if pr.head_repo is None:
                raise SandboxError(422, "head repository was deleted")
            actor = actor or pr.user
            sha = self.make_commit(self.repo(full_name).branches[pr.base_ref], dict(files or {}), message, actor)
            self.repo(pr.head_repo).branches[pr.head_ref] = sha
            self._sync_pull_heads(pr.head_repo, pr.head_ref)
            pr.events.append(Event(self.next_id(), "head_ref_force_pushed", actor, self.now(), commit_id=sha))
            return sha

    def change_base(self, full_name: str, number: int, base: str, actor: str | None = None) -> None:
        """Retarget the PR to the repository's branch ``base`` (PATCH pulls/N with ``base``), recording a
        ``base_ref_changed`` event as GitHub does; an unknown branch is a 422 naming the field."""
        with self.lock:
            repo, pr = self.repo(full_name), self.pull(full_name, number)
            if base not in repo.branches:
                raise SandboxError(422, "Validation Failed",
                                   [{"resource": "PullRequest", "code": "invalid", "field": "base"}])
            if base == pr.base_ref:
                return
            pr.base_ref, pr.updated = base, self.now()
            pr.events.append(Event(self.next_id(), "base_ref_changed", actor or pr.user, pr.updated))

    def set_draft(self, full_name: str, number: int, draft: bool) -> None:
        with self.lock:
            pr = self.pull(full_name, number)
            pr.draft, pr.updated = draft, self.now()

    def pull_commits(self, full_name: str, number: int) -> list[Commit]:
        """The PR's commits, oldest first: from the head back to the first commit the base branch has."""
        with self.lock:
            repo = self.repo(full_name)
            pr = self.pull(full_name, number)
            on_base = set()
            sha: str | None = repo.branches[pr.base_ref]
            while sha:
                on_base.add(sha)
                sha = self.commits[sha].parent
            out = []
            sha = pr.head_sha
            while sha and sha not in on_base:
                out.append(self.commits[sha])
                sha = self.commits[sha].parent
            return out[::-1]

    def push_commit(self, full_name: str, number: int, files: dict[str, bytes | str | None] | None = None,
                    message: str = "Another change", sha: str | None = None) -> str:
        """Push a new commit to the PR's head branch (optionally changing files, ``sha`` forcing its id).
        Returns the new head sha."""
        with self.lock:
            pr = self.pull(full_name, number)
            if pr.head_repo is None:
                raise SandboxError(422, "head repository was deleted")
            head_repo = self.repo(pr.head_repo)
            sha = self.make_commit(head_repo.branches[pr.head_ref], dict(files or {}), message, pr.user, sha)
            head_repo.branches[pr.head_ref] = sha
            self._sync_pull_heads(pr.head_repo, pr.head_ref)
            return sha

    def change_file(self, full_name: str, number: int, path: str, content: bytes | str) -> str:
        return self.push_commit(full_name, number, {path: content}, message=f"Change {path}")

    def delete_fork(self, full_name: str) -> None:
        """Delete a fork: its PRs keep their head sha but report ``head.repo: null`` (as GitHub does; the
        published schema says non-nullable, so tests doing this must disable the schema check)."""
        with self.lock:
            self.repo(full_name)
            for repo in self.repos.values():
                for issue in repo.issues.values():
                    if issue.head_repo == full_name:
                        issue.head_repo = None
            del self.repos[full_name]

    def add_status(self, full_name: str, sha: str, state: str, context: str, creator: str,
                   description: str | None = None, target_url: str | None = None) -> CommitStatus:
        with self.lock:
            self.repo(full_name)
            status = CommitStatus(self.next_id(), sha, state, context, description, target_url, creator, self.now())
            self.statuses.setdefault(full_name, []).append(status)
            return status

    def statuses_for(self, full_name: str, sha: str) -> list[CommitStatus]:
        """Every status of commit `sha`, newest first (GitHub's order)."""
        with self.lock:
            return [status for status in reversed(self.statuses.get(full_name, [])) if status.sha == sha]

    def latest_statuses(self, full_name: str, sha: str) -> dict[str, CommitStatus]:
        """{context: its newest status}: what branch protection reads."""
        latest: dict[str, CommitStatus] = {}
        for status in self.statuses_for(full_name, sha):
            latest.setdefault(status.context, status)
        return latest

    def add_review(self, full_name: str, number: int, login: str, state: str = "APPROVED",
                   commit_id: str | None = None, body: str = "") -> int:
        with self.lock:
            self.add_user(login)
            pr = self.pull(full_name, number)
            review = Review(self.next_id(), login, state, commit_id or pr.head_sha, body, self.now())
            pr.reviews.append(review)
            return review.id

    def add_comment(self, full_name: str, number: int, login: str, body: str) -> int:
        with self.lock:
            self.add_user(login)
            issue = self.issue(full_name, number)
            now = self.now()
            comment = Comment(self.next_id(), number, login, body, now, now)
            self.comments[full_name][comment.id] = comment
            issue.comments.append(comment.id)
            issue.updated = now
            return comment.id

    def edit_comment(self, full_name: str, comment_id: int, body: str) -> Comment:
        with self.lock:
            comment = self.comments[full_name].get(comment_id)
            if comment is None:
                raise SandboxError(404, "Not Found")
            comment.body, comment.updated = body, self.now()
            return comment

    # ------------------------------------------------------------ inspection
    def issue_comments(self, full_name: str, number: int) -> list[Comment]:
        with self.lock:
            issue = self.issue(full_name, number)
            return [self.comments[full_name][cid] for cid in issue.comments]

    def labels_of(self, full_name: str, number: int) -> list[str]:
        with self.lock:
            return list(self.issue(full_name, number).labels)

    def file_at(self, full_name: str, ref: str | None, path: str) -> bytes | None:
        with self.lock:
            return self.commits[self.resolve(full_name, ref)].tree.get(path)

    def head_sha(self, full_name: str, number: int) -> str:
        with self.lock:
            return self.pull(full_name, number).head_sha


def seed_demo(state: GitHubState) -> dict[str, Any]:
    """A small demo world: acme/infra with an admin, a triage user, and PR #1 carrying a plan."""
    tokens = {login: state.add_user(login, f"ghp_demo_{login}") for login in ("alice", "bob", "carol")}
    state.create_repo("acme/infra", files={"README.md": "# infra\n"})
    state.add_collaborator("acme/infra", "alice", "admin")
    state.add_collaborator("acme/infra", "bob", "triage")
    plan = (
        "namespace: demo\ntarget: prod\nactions:\n"
        "  - type: scale_workload\n    name: web\n    replicas: 3\n"
    )
    number = state.open_pr("acme/infra", head="infra-scale/prod", author="alice", title="infra-scale: prod",
                           files={"ops/plans/infra-scale/prod/plan.yaml": plan})
    return {"repo": "acme/infra", "pr": number, "tokens": tokens,
            "plan_path": "ops/plans/infra-scale/prod/plan.yaml"}
