"""Publishing an infra-scale plan: atomically in the working tree, and as one pull request per target on GitHub;
and, after an execution, reporting it on its pull request (`report_execution`).

The PR lives on branch `infra-scale/<target>/<YYYY-MM-DD>` (cut from the base branch), its files are committed
through the contents API, its title is `infra-scale: <target> (<date>)` and it carries the `infra-plan` label.
There is never more than one open PR per target: an open PR whose head branch (in this repository, not a fork)
starts with `infra-scale/<target>/`, or that carries the label and the target's title, or the hidden marker in
its body, is updated (files, title, body) instead of opening another.

Every step is idempotent: a file whose content already matches is not committed again; a branch that exists is
reused; each POST/PUT goes through GitHub's one write retry layer (`integrations.github.written`), which reads the
state again before each attempt, so a write the server stored despite a failed answer is not repeated.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from core.conventions import (
    BRANCH_PREFIX,
    LABELS,
    MARKER_PREFIX,
    PLAN_FILE,
    Flow,
    execution_marker,
    status_context,
    target_marker,
)
from core.desired import DesiredState
from core.diff import Diff
from core.errors import InputError, TemporaryError
from core.gate import GateRequirement
from core.lifecycle.scale import PullRequestOutcome, WrittenPlan
from core.plan import load_plan
from core.plan_writer import render_plan
from core.report import GITHUB_COMMENT_LIMIT
from core.retry import GITHUB_RETRY, RetryPolicy
from core.vocabulary import CommitState
from integrations.files import write_atomically
from integrations.github import (
    GitHubError,
    GitHubSettings,
    audit_marker,
    client,
    contents_or_none,
    set_commit_status,
    token_login,
    translate_errors,
    written,
)
from integrations.secrets import mask

log = logging.getLogger(__name__)

PLAN_LABEL = "infra-plan"


def branch_name(target: str, day: date) -> str:
    return f"{BRANCH_PREFIX}/{target}/{day.isoformat()}"


def pr_title(target: str, day: date) -> str:
    return f"{BRANCH_PREFIX}: {target} ({day.isoformat()})"


# --------------------------------------------------------------------------- local files
def write_files_atomically(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write each file atomically (see `integrations.files`); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / name for name in files]
    for path, text in zip(written, files.values(), strict=True):
        write_atomically(path, text)
    return written


def write_plan_locally(state: DesiredState, diff: Diff, plans_dir: str | Path, generated_on: date) -> WrittenPlan:
    """Render the plan into `<plans_dir>/<target>/`, atomically, and load it back (a generated plan must load)."""
    files = render_plan(state, diff, generated_on)
    directory = Path(plans_dir) / state.target
    write_files_atomically(directory, files)
    return WrittenPlan(load_plan(directory / PLAN_FILE), files, diff.live)


def repository_paths(plans_dir: str | Path, target: str, names: list[str] | tuple[str, ...],
                     cwd: Path | None = None) -> dict[str, str]:
    """{file name: path in the repository}; `plans_dir` is taken relative to the working directory (the clone)."""
    directory = Path(plans_dir)
    if directory.is_absolute():
        base = (cwd or Path.cwd()).resolve()
        if not directory.resolve().is_relative_to(base):
            raise InputError("arguments", "plans_dir",
                             f"{plans_dir} is outside the working directory {base}, so it has no repository path")
        directory = directory.resolve().relative_to(base)
    parts = [part for part in directory.as_posix().split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InputError("arguments", "plans_dir", f"{plans_dir} leaves the repository")
    return {name: "/".join([*parts, target, name]) for name in names}


# --------------------------------------------------------------------------- GitHub
Write = Callable[[Callable[[], Any], Callable[[], Any]], Any]
"""`written` with its settings and action: (attempt, done) -> the write's result."""


def _same_repo(pr: Any, full_name: str) -> bool:
    head = pr.head
    return bool(head is not None and head.repo is not None and head.repo.full_name.lower() == full_name.lower())


def find_open_pr(repo: Any, full_name: str, target: str) -> Any | None:
    """The open PR for `target` (oldest first if, against the rules, there are several)."""
    prefix = f"{BRANCH_PREFIX}/{target}/"
    title_prefix = f"{BRANCH_PREFIX}: {target} ("
    matches = []
    for pr in repo.get_pulls(state="open"):
        if not _same_repo(pr, full_name):
            continue
        by_branch = (pr.head.ref or "").startswith(prefix)
        labels = {label.name for label in pr.labels or ()}
        by_title = PLAN_LABEL in labels and (pr.title or "").startswith(title_prefix)
        by_marker = target_marker(target) in (pr.body or "")
        if by_branch or by_title or by_marker:
            matches.append(pr)
    if len(matches) > 1:
        log.warning("%d open PRs for target %s (%s); updating #%d", len(matches), target,
                    ", ".join(f"#{pr.number}" for pr in matches), min(pr.number for pr in matches))
    return min(matches, key=lambda pr: pr.number) if matches else None


def _branch_sha(repo: Any, branch: str) -> str | None:
    """The branch's head commit, or None when it does not exist (reading `.object` forces a lazy client to ask)."""
    from github.GithubException import GithubException

    try:
        sha: str = repo.get_git_ref(f"heads/{branch}").object.sha
        return sha
    except GithubException as error:
        if error.status == 404:
            return None
        raise


def applied_plan(pr: Any) -> str | None:
    """Why `pr` must not get a new plan: infra-apply executed its plan (audit comment) and no rollback followed.

    Overwriting an applied plan would leave `rollback-plan` reversing a plan that never ran.
    """
    flows = set()
    for comment in pr.get_issue_comments():
        for line in (comment.body or "").splitlines():
            if line.startswith(MARKER_PREFIX):
                flows.add(line[len(MARKER_PREFIX):].split(":", 1)[0])
    if "apply" in flows and "rollback" not in flows:
        return (f"the plan on pull request #{pr.number} has been applied; merge or close it first "
                "(the next run then opens a new pull request)")
    return None


def _ensure_branch(write: Write, repo: Any, branch: str, base: str) -> None:
    def create() -> str:
        sha = _branch_sha(repo, base)
        if sha is None:
            raise GitHubError(f"base branch {base!r} does not exist")
        repo.create_git_ref(f"refs/heads/{branch}", sha)
        return sha

    write(create, lambda: _branch_sha(repo, branch))


def _commit_file(write: Write, repo: Any, path: str, text: str, branch: str, message: str) -> bool:
    """Commit `text` at `path` on `branch` unless it is already there; True when this call changed it."""
    wanted = text.encode("utf-8")
    tried = False

    def done() -> bool | None:
        content = contents_or_none(repo, path, branch)
        return tried if content is not None and content.decoded_content == wanted else None

    def put() -> bool:
        nonlocal tried
        tried = True
        content = contents_or_none(repo, path, branch)
        if content is None:
            repo.create_file(path, message, text, branch=branch)
        else:
            repo.update_file(path, message, text, content.sha, branch=branch)
        return True

    return bool(write(put, done))


def publish_pull_request(settings: GitHubSettings, target: str, files: Mapping[str, str], body: str,
                         day: date, base: str = "main", label: str = PLAN_LABEL) -> PullRequestOutcome:
    """Open the target's PR with `files` ({repository path: text}), or update the open one. Raises GitHubError."""
    missing = settings.missing()
    if missing:
        raise GitHubError(f"GitHub settings missing: {', '.join(missing)}")
    title = pr_title(target, day)
    full_body = f"{target_marker(target)}\n{body}"
    action = f"publishing the infra-scale plan for {target}"

    def write(attempt: Callable[[], Any], done: Callable[[], Any]) -> Any:
        return written(settings, action, attempt, done)

    with translate_errors(settings, action):
        repo = client(settings).get_repo(settings.full_name)
        pr = find_open_pr(repo, settings.full_name, target)
        branch = pr.head.ref if pr is not None else branch_name(target, day)
        blocked = applied_plan(pr) if pr is not None else None
        if pr is not None and blocked is not None:
            return PullRequestOutcome(pr.number, pr.html_url, branch, False, (), blocked)
        if pr is None:
            _ensure_branch(write, repo, branch, base)
        committed = tuple(path for path, text in files.items()
                          if _commit_file(write, repo, path, text, branch, f"{title}: {path.rsplit('/', 1)[-1]}"))
        created = pr is None
        if pr is None:
            pr = write(lambda: repo.create_pull(base=base, head=branch, title=title, body=full_body),
                       lambda: find_open_pr(repo, settings.full_name, target))
        elif pr.title != title or (pr.body or "") != full_body:
            pr.edit(title=title, body=full_body)
        if label not in {existing.name for existing in pr.labels or ()}:
            write(lambda: pr.add_to_labels(label) or True,
                  lambda: True if label in {lb.name for lb in pr.get_labels()} else None)
        return PullRequestOutcome(pr.number, pr.html_url, branch, created, committed)


# --------------------------------------------------------------------------- after an execution
def post_execution_comment(settings: GitHubSettings, requirement: GateRequirement, markdown: str,
                           policy: RetryPolicy = GITHUB_RETRY) -> Callable[[], int]:
    """A call that posts a new comment for this execution (so that everyone following the PR is notified; the
    plan comment is the sticky one), under the flow's audit marker, retried on `policy`: each attempt first looks
    for the comment by a marker of its own, so a POST whose answer was lost is not sent twice."""
    settings = settings.serving(requirement.repository)
    once = execution_marker(uuid.uuid4().hex)
    body = f"{audit_marker(requirement)}\n{once}\n{mask(markdown)}"[:GITHUB_COMMENT_LIMIT]

    def issue() -> Any:
        return client(settings).get_repo(settings.full_name).get_issue(requirement.pr)

    def posted() -> int | None:
        found = [comment.id for comment in issue().get_comments() if once in (comment.body or "").splitlines()]
        return int(found[0]) if found else None

    return partial(written, settings, f"writing the execution comment on PR #{requirement.pr}",
                   lambda: int(issue().create_comment(body).id), posted, policy)


def report_execution(settings: GitHubSettings, requirement: GateRequirement, markdown: str,
                     policy: RetryPolicy = GITHUB_RETRY) -> list[str]:
    """Post the execution's comment (the run claimed the trigger label before its first change); returns a
    warning when it could not be done.

    The comment is retried on `policy`'s schedule while GitHub fails temporarily (5xx, timeouts, an unreachable
    server, a rate limit); it is idempotent. The cluster change has happened and is recorded, so what GitHub
    refused or never answered is reported as a warning, not raised.
    """
    parts: dict[str, Callable[[], object]] = {
        "write the audit comment": post_execution_comment(settings, requirement, markdown, policy)}
    return [f"could not {name} on PR #{requirement.pr}{failure}" for name, failure in failures(parts, policy).items()]


def failures(parts: Mapping[str, Callable[[], object]], policy: RetryPolicy = GITHUB_RETRY) -> dict[str, str]:
    """Run each GitHub write once (each retries by itself, on `policy`; one that succeeded is not sent again);
    returns, per part that failed, `[ after N attempts]: <error>` (the attempts when the failure was temporary,
    so that the whole schedule was tried)."""
    failed: dict[str, str] = {}
    for name, part in parts.items():
        try:
            part()
        except GitHubError as error:
            tries = f" after {policy.attempts} attempts" if isinstance(error, TemporaryError) else ""
            failed[name] = f"{tries}: {error}"
    return failed


# --------------------------------------------------------------------------- after a refusal
REFUSAL_FIX = "ask someone with write access to add the label again"


def refusal_marker(requirement: GateRequirement, head_sha: str | None, reason: str) -> str:
    """The hidden first line of a refusal comment: one per PR, flow, head and reason (the reason as a digest, so
    that what a refused PR carries never shapes the marker)."""
    digest = hashlib.sha256(reason.encode("utf-8")).hexdigest()[:16]
    return f"{MARKER_PREFIX}refused:{requirement.flow}:{head_sha or 'unknown'}:{digest} -->"


def refusal_markdown(requirement: GateRequirement, sentence: str, run_url: str | None) -> str:
    label = LABELS.get(requirement.flow, requirement.flow)
    lines = [f"### infra-{requirement.flow} refused: `{requirement.plan_path}`", "", f"**{sentence}**", "",
             f"Nothing was changed. To run it, {REFUSAL_FIX} (`{label}`) once the reason above no longer holds."]
    if run_url:
        lines += ["", f"[Prefect flow run]({run_url})"]
    return "\n".join(lines)


def report_refusal(settings: GitHubSettings, requirement: GateRequirement, head_sha: str | None, reason: str,
                   run_url: str | None = None, policy: RetryPolicy = GITHUB_RETRY) -> list[str]:
    """A refused execution on its PR: a short comment, and `infra/<flow>` failure on the head, both saying why
    and what to do. Once per PR, head and reason: an earlier refusal comment of the token's own user carrying
    the same hidden marker means it was said already, so relabelling cannot make the bot spam. Returns a
    warning per part that could not be done (the refusal itself stands)."""
    settings = settings.serving(requirement.repository)
    sentence = f"Refusing to execute: {reason}."
    marker = refusal_marker(requirement, head_sha, reason)
    action = f"reporting the refusal on PR #{requirement.pr}"
    try:
        with translate_errors(settings, action):
            g = client(settings)
            me = token_login(g)
            issue = g.get_repo(settings.full_name).get_issue(requirement.pr)

            def said() -> bool | None:
                for comment in issue.get_comments():
                    user = comment.user
                    mine = user is not None and (user.login == me if me is not None else user.type == "Bot")
                    if mine and marker in (comment.body or "").splitlines():
                        return True
                return None

            if said():
                return []
    except GitHubError as error:
        return [f"could not report the refusal on PR #{requirement.pr}: {error}"]
    body = f"{marker}\n{refusal_markdown(requirement, sentence, run_url)}"

    def comment() -> None:
        written(settings, action, lambda: bool(issue.create_comment(body)), said, policy)

    parts: dict[str, Callable[[], object]] = {"post the refusal comment": comment}
    if head_sha:
        context = status_context(requirement.flow)
        description = f"refused: {reason}; {REFUSAL_FIX}"
        if len(description) > 140:
            description = f"refused ({REFUSAL_FIX}): {reason}"
        parts[f"set {context}"] = lambda: set_commit_status(settings, requirement.repository, head_sha, context,
                                                            CommitState.FAILURE, description, run_url, policy)
    return [f"could not {name} on PR #{requirement.pr}{failure}" for name, failure in failures(parts, policy).items()]


# --------------------------------------------------------------------------- before an apply
def plan_status(settings: GitHubSettings, repository: str | None, sha: str) -> str | None:
    """The state of `infra/plan` on `sha` (the newest status of that context: GitHub's combined status lists
    the newest per context), or None when infra-plan set none there. Raises GitHubError."""
    settings = settings.serving(repository)
    context = status_context(Flow.PLAN)
    with translate_errors(settings, f"reading {context} on {sha[:7]}"):
        # A lazy client's commit is its URL: GET /repos/{o}/{r}/commits/{ref}/status is the only request
        combined = client(settings).get_repo(settings.full_name).get_commit(sha).get_combined_status()
        states = [status.state for status in combined.statuses if status.context == context]
        return str(states[0]) if states else None
