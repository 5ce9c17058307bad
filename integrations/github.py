"""GitHub through PyGithub: gather the gate's facts, remove the trigger label, keep one audit comment per plan.

Settings come from the environment (``GitHubSettings.from_env``): GH_OWNER, GH_REPO (or GITHUB_REPOSITORY=o/r),
GITHUB_TOKEN (or GITHUB_TOKEN_BLOCK naming a Prefect Secret block, loaded lazily), GITHUB_API_URL, PRNUM,
GITHUB_MAX_RATE_LIMIT_WAIT (seconds, default 60), GITHUB_RETRIES (default 3), GITHUB_TIMEOUT (seconds per
request, default 15), INFRA_REPOSITORIES (comma-separated owner/name this worker also serves, besides
GH_OWNER/GH_REPO), INFRA_TRUSTED_BOTS (comma-separated bot logins whose labels count).

Failure policy:
- ``check_gate`` / ``recheck_gate`` never raise: missing settings or any GitHub error become a refusal
  (fail closed) whose reason is one clear sentence.
- ``fetch_facts``, ``claim_trigger_label``, ``upsert_audit_comment`` raise ``GitHubError`` (one clear message),
  a TemporaryError or a PermanentError by type.
- One retry layer per request: PyGithub's client retries the idempotent requests (GET, PATCH, DELETE) on 5xx
  and rate limits, GITHUB_RETRIES times; it never retries a POST or PUT, which ``written`` retries instead, on
  ``core.retry.GITHUB_RETRY``, checking first whether an earlier attempt landed. Rate limits are waited for up
  to ``max_rate_limit_wait`` seconds (as long as GitHub asks: Retry-After, x-ratelimit-reset), then a clear
  error. The token never appears in a message or repr (it is registered with ``integrations.secrets`` as soon as
  it is known).
- Answers GitHub should not give (not JSON, a redirect, a link to another host) are refusals too, never retried.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from core.conventions import LABELS, Env
from core.conventions import audit_marker as flow_marker
from core.errors import PermanentError, TemporaryError
from core.gate import (
    GateDecision,
    GateRequirement,
    PullRequestFacts,
    evaluate_gate,
    plan_path_problem,
    recheck,
    repository_problem,
    short,
    trigger_role_ok,
)
from core.k8s import MAX_INT32, decimal_integer
from core.report import sticky_body
from core.retry import GITHUB_RETRY, RetryPolicy
from core.vocabulary import CommitState
from integrations import secrets

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
T = TypeVar("T")


class GitHubError(Exception):
    """A GitHub call failed. The message is one clear sentence and never contains the token.

    Constructed as GitHubError(...), it is a TransientGitHubError (a TemporaryError: a 5xx, a timeout, an
    unreachable server, a rate limit within the wait cap; `delay_s` is the wait GitHub asked for) or a
    PermanentGitHubError (a PermanentError: bad settings, other 4xx, answers GitHub should not give), as kubectl's
    errors are. The type is the classification; `transient` follows from it."""

    transient: bool

    def __new__(cls, message: str, transient: bool = False, delay_s: float | None = None) -> GitHubError:
        if cls is GitHubError:
            cls = TransientGitHubError if transient else PermanentGitHubError
        return super().__new__(cls, message)

    def __init__(self, message: str, transient: bool = False, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s

    def __reduce__(self) -> tuple[Any, ...]:
        return GitHubError, (str(self), self.transient, self.delay_s)


class TransientGitHubError(GitHubError, TemporaryError):
    pass


class PermanentGitHubError(GitHubError, PermanentError):
    pass


class _RedirectRefused(Exception):
    """Raised from inside urllib3 for a 3xx: PyGithub would follow a same-host 301 silently."""

    def __init__(self, status: int) -> None:
        super().__init__(f"redirect {status}")
        self.status = status


@dataclass(frozen=True)
class GitHubSettings:
    owner: str | None
    repo: str | None
    token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    token_block: str | None = None  # Prefect Secret block name, used when token is empty
    max_rate_limit_wait: float = 60.0
    retries: int = 3
    backoff_factor: float = 0.25
    timeout: float = 15.0
    pr: int | None = None
    repositories: tuple[str, ...] = ()  # served besides owner/repo (INFRA_REPOSITORIES)
    trusted_bots: tuple[str, ...] = ()  # bot logins whose labels count (INFRA_TRUSTED_BOTS)
    base_branches: tuple[str, ...] = ()  # PR bases allowed besides the default branch (INFRA_BASE_BRANCHES)

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return (f"GitHubSettings(owner={self.owner!r}, repo={self.repo!r}, token={token!r}, "
                f"api_url={secrets.mask(self.api_url)!r}, token_block={self.token_block!r}, "
                f"max_rate_limit_wait={self.max_rate_limit_wait!r}, retries={self.retries!r}, pr={self.pr!r}, "
                f"repositories={self.repositories!r}, trusted_bots={self.trusted_bots!r}, "
                f"base_branches={self.base_branches!r})")

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GitHubSettings:
        owner, repo = env.get("GH_OWNER") or None, env.get("GH_REPO") or None
        if (owner is None or repo is None) and "/" in env.get("GITHUB_REPOSITORY", ""):
            gh_owner, gh_repo = env["GITHUB_REPOSITORY"].split("/", 1)
            owner, repo = owner or gh_owner, repo or gh_repo
        pr_text = (env.get("PRNUM") or "").strip().lstrip("#")
        token = env.get("GITHUB_TOKEN") or None
        api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        secrets.register(token)
        secrets.register_url(api_url)
        return cls(
            owner=owner,
            repo=repo,
            token=token,
            api_url=api_url,
            token_block=env.get("GITHUB_TOKEN_BLOCK") or None,
            max_rate_limit_wait=_float(env.get("GITHUB_MAX_RATE_LIMIT_WAIT"), 60.0),
            retries=int(_float(env.get("GITHUB_RETRIES"), 3)),
            timeout=_float(env.get("GITHUB_TIMEOUT"), 15.0),
            pr=decimal_integer(pr_text, 1, MAX_INT32),
            repositories=_names(env.get(Env.REPOSITORIES)),
            trusted_bots=_names(env.get(Env.TRUSTED_BOTS)),
            base_branches=_names(env.get(Env.BASE_BRANCHES)),
        )

    def serving(self, repository: str | None) -> GitHubSettings:
        """These settings for `repository` (from an event), if this worker serves it. Raises GitHubError before
        anything is asked of GitHub when it does not."""
        configured = self.full_name if self.owner and self.repo else None
        problem = repository_problem(repository, configured, self.repositories)
        if problem:
            raise GitHubError(problem)
        if repository is None:
            return self
        owner, _, name = repository.partition("/")
        return replace(self, owner=owner, repo=name)

    def pull_request_page(self, number: int) -> str:
        """The PR's web page: github.com for api.github.com, the host itself for GitHub Enterprise (`<host>/api/v3`)."""
        api = self.api_url.rstrip("/")
        web = "https://github.com" if api == DEFAULT_API_URL.rstrip("/") else api.removesuffix("/api/v3")
        return f"{web}/{self.owner}/{self.repo}/pull/{number}"

    def missing(self) -> list[str]:
        """Names of required settings that are not set (the token counts as set when a block is named)."""
        out = [name for name, value in (("GH_OWNER", self.owner), ("GH_REPO", self.repo)) if not value]
        if not self.token and not self.token_block:
            out.append("GITHUB_TOKEN")
        return out

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text not in (None, "") else default
    except ValueError:
        return default


# --------------------------------------------------------------------------- client
def _resolve_token(settings: GitHubSettings) -> str:
    if settings.token:
        secrets.register(settings.token)
        return settings.token
    if settings.token_block:
        try:
            from prefect.blocks.system import Secret  # lazy: only when a block is configured
        except ImportError:
            raise GitHubError("a Prefect Secret block is configured for the GitHub token "
                              "but Prefect is not installed") from None
        try:
            block: Any = Secret.load(settings.token_block, _sync=True)  # type: ignore[call-arg]
            value = block.get()
        except Exception as e:  # any load failure becomes one clear error
            raise GitHubError(f"cannot load the GitHub token from Prefect Secret block "
                              f"'{settings.token_block}' ({type(e).__name__})") from None
        if not isinstance(value, str) or not value:
            raise GitHubError(f"Prefect Secret block '{settings.token_block}' holds no token")
        secrets.register(value)
        return value
    raise GitHubError("no GitHub token configured (set GITHUB_TOKEN or GITHUB_TOKEN_BLOCK)")


def _retry(settings: GitHubSettings) -> Any:
    from github import GithubRetry
    from github.GithubException import RateLimitExceededExceedsMaxWait

    class _Retry(GithubRetry):
        """GithubRetry without POST/PUT, with Retry-After capped like the rate-limit reset, and no redirects:
        urllib3 asks `is_retry` about every answer, so a 3xx stops here before PyGithub could follow it."""

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if 300 <= status_code < 400:
                raise _RedirectRefused(status_code)
            return bool(super().is_retry(method, status_code, has_retry_after))

        def get_retry_after(self, response: Any) -> float | None:
            value: float | None = super().get_retry_after(response)
            cap = self.max_rate_limit_wait
            if value is not None and cap is not None and value > cap:
                raise RateLimitExceededExceedsMaxWait(
                    response.status, {"message": f"Retry-After {value:.0f}s exceeds the wait cap"},
                    dict(response.headers), wait=value)
            return value

    return _Retry(
        total=settings.retries,
        backoff_factor=settings.backoff_factor,
        max_rate_limit_wait=settings.max_rate_limit_wait,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"}),
        raise_on_status=False,
    )


def _client(settings: GitHubSettings) -> Any:
    from github import Auth, Github

    return Github(
        base_url=settings.api_url,
        lazy=True,
        auth=Auth.Token(_resolve_token(settings)),
        retry=_retry(settings),
        timeout=int(max(settings.timeout, 1)),
        per_page=100,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def _message_of(data: Any) -> str:
    if isinstance(data, dict):
        message = str(data.get("message") or "").strip()
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = "; ".join(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                                for e in errors[:3])
            message = f"{message} ({details})" if message else details
        return secrets.mask_untrusted(message.rstrip("."))
    return secrets.mask_untrusted(str(data or "").strip().rstrip("."))


@contextmanager
def _translate(settings: GitHubSettings, action: str) -> Iterator[None]:
    """Turn every PyGithub/requests failure into one GitHubError sentence (no chained traceback), classified."""
    try:
        yield
    except Exception as error:
        where = f"{action} ({settings.full_name} at {secrets.mask(settings.api_url)})"
        translated = _translated(settings, where, error)
        if translated is None:
            raise
        raise translated from None


def _translated(settings: GitHubSettings, where: str, error: Exception) -> GitHubError | None:
    from github.GithubException import GithubException

    if isinstance(error, GitHubError):
        return GitHubError(secrets.mask(str(error)), error.transient, error.delay_s)
    if isinstance(error, _RedirectRefused):
        return GitHubError(f"GitHub answered with a redirect ({error.status}) while {where}; "
                           f"redirects are not followed (check GITHUB_API_URL)")
    if isinstance(error, GithubException):
        return _answer_error(settings, where, error)
    return _transport_error(settings, where, error)


def _answer_error(settings: GitHubSettings, where: str, error: Any) -> GitHubError:
    """GitHub answered with an error status (a PyGithub GithubException)."""
    from github.GithubException import (
        BadCredentialsException,
        RateLimitExceededExceedsMaxWait,
        RateLimitExceededException,
        UnknownObjectException,
    )

    if isinstance(error, BadCredentialsException):
        return GitHubError(f"GitHub rejected the token (401 Bad credentials) while {where}")
    if isinstance(error, RateLimitExceededExceedsMaxWait):
        return _over_the_cap(settings, where, error.wait)
    if isinstance(error, RateLimitExceededException):
        reset = (error.headers or {}).get("x-ratelimit-reset")
        when = f" (resets at {datetime.fromtimestamp(int(reset)).isoformat()})" if reset and reset.isdigit() else ""
        return _rate_limited(settings, f"GitHub rate limit exceeded while {where}{when}", where, error.headers)
    if isinstance(error, UnknownObjectException):
        return GitHubError(f"not found (404) while {where}")
    message = _message_of(error.data)
    sentence = f"GitHub answered {error.status} while {where}" + (f": {message}" if message else "")
    if error.status == 429:
        return _rate_limited(settings, sentence, where, error.headers)
    return GitHubError(sentence, transient=error.status >= 500)


def _over_the_cap(settings: GitHubSettings, where: str, wait_s: float | None) -> GitHubError:
    wait = f"{wait_s:.0f}s" if wait_s is not None else "longer"
    return GitHubError(f"GitHub rate limit exceeded while {where}: waiting would take {wait}, "
                       f"more than the configured cap of {settings.max_rate_limit_wait:g}s")


def _rate_limited(settings: GitHubSettings, sentence: str, where: str,
                  headers: Mapping[str, str] | None) -> GitHubError:
    """A rate limit: temporary, waited for as long as GitHub asks, unless that is longer than the cap."""
    wait_s = asked_wait_s(headers or {}, time.time())
    if wait_s > settings.max_rate_limit_wait:
        return _over_the_cap(settings, where, wait_s)
    return GitHubError(sentence, transient=True, delay_s=wait_s)


SECONDARY_RATE_WAIT_S = 60.0
"""GitHub's advice for a rate-limited answer that says neither Retry-After nor a reset: wait at least a minute."""


def asked_wait_s(headers: Mapping[str, str], now: float) -> float:
    """How long a rate-limited answer asks the client to wait: `Retry-After` seconds; else, when no requests
    remain, until `x-ratelimit-reset` (epoch seconds) and one more; else a minute (GitHub's documented order)."""
    lower = {name.lower(): str(value) for name, value in headers.items()}
    retry_after = lower.get("retry-after", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    reset = lower.get("x-ratelimit-reset", "").strip()
    if lower.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(int(reset) - now, 0.0) + 1
    return SECONDARY_RATE_WAIT_S


def _transport_error(settings: GitHubSettings, where: str, error: Exception) -> GitHubError | None:
    """No usable answer: the connection, a timeout, or a body PyGithub could not take; None when unknown."""
    import requests

    timeout = f"GitHub did not answer within {settings.timeout:g}s while {where}"
    if isinstance(error, requests.exceptions.RetryError):
        return GitHubError(f"GitHub kept failing (5xx) while {where}, gave up after {settings.retries} "
                           f"retries", transient=True)
    if isinstance(error, requests.exceptions.Timeout):
        return GitHubError(timeout, transient=True)
    if isinstance(error, requests.exceptions.ConnectionError):
        if _timed_out(error):
            return GitHubError(f"{timeout}, {settings.retries} retries included", transient=True)
        return GitHubError(f"cannot reach GitHub while {where}", transient=True)
    if isinstance(error, requests.exceptions.RequestException):
        return GitHubError(f"request to GitHub failed while {where} ({type(error).__name__})")
    if isinstance(error, json.JSONDecodeError):  # PyGithub parses every answer that starts like JSON
        return GitHubError(f"GitHub's answer was not JSON while {where}")
    if isinstance(error, AssertionError):  # PyGithub asserts that every URL it follows is on its host
        return GitHubError(f"GitHub's answer links to another host while {where}; not followed")
    if isinstance(error, RuntimeError):  # PyGithub's refusal of a redirect to another host or scheme
        return GitHubError(f"GitHub answered with a redirect to another host while {where}")
    return None


def _timed_out(error: BaseException) -> bool:
    """requests reports read timeouts that exhausted urllib3's retries as a ConnectionError."""
    from urllib3.exceptions import ReadTimeoutError

    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, ReadTimeoutError)


def written(settings: GitHubSettings, action: str, attempt: Callable[[], T], done: Callable[[], T | None] | None = None,
            policy: RetryPolicy = GITHUB_RETRY) -> T:
    """A GitHub write (POST, PUT) through its one retry layer: `done()` first, when given (the write's effect, which
    an earlier attempt may have stored although its answer was an error), then `attempt()`; the two retried on
    `policy` while GitHub fails temporarily (TemporaryError: 5xx, timeouts, a rate limit within the cap, waited for
    as long as GitHub asked). PyGithub's client retries no POST or PUT itself. Raises GitHubError."""

    def once() -> T:
        with _translate(settings, action):
            found = done() if done is not None else None
            return found if found is not None else attempt()

    return policy.call(once)


# --------------------------------------------------------------------------- facts
def _is_status(e: BaseException, *statuses: int) -> bool:
    from github.GithubException import GithubException

    return isinstance(e, GithubException) and e.status in statuses


def _permission(repo: Any, login: str) -> tuple[str, str]:
    """(role_name, legacy permission) of ``login`` in ``repo``; ('none', 'none') for an unknown user."""
    from github.GithubException import GithubException

    try:
        # One GET for both fields: PyGithub's get_collaborator_permission and get_collaborator_role_name would ask
        # twice. `requester` is PyGithub's public way to an endpoint's whole answer.
        _, data = repo.requester.requestJsonAndCheck(
            "GET", f"{repo.url}/collaborators/{quote(login, safe='')}/permission")
    except GithubException as e:
        if e.status == 404:
            return "none", "none"
        raise
    role = str(data.get("role_name") or data.get("permission") or "none")
    return role, str(data.get("permission") or "none")


@dataclass(frozen=True)
class LabelHistory:
    """What the PR's timeline says about the newest `labeled` event for a label and what came after it."""

    actor: str | None = None
    actor_type: str | None = None
    added_at: str | None = None
    pushed_after: tuple[str, ...] = ()


def _timestamp(text: Any) -> datetime | None:
    """An ISO 8601 time from GitHub, in UTC when it names no zone (so any two compare), or None."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _object(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, dict) else {}


def _push_of(item: Mapping[str, Any]) -> tuple[str, datetime | None] | None:
    """(description, when) for a timeline item that changes the PR's head, or None."""
    if item.get("event") == "committed":
        sha = item.get("sha")
        committed_at = _timestamp(_object(item, "committer").get("date"))
        return f"commit {short(sha if isinstance(sha, str) else None)}", committed_at
    if item.get("event") == "head_ref_force_pushed":
        return f"force-push to {short(item.get('commit_id'))}", _timestamp(item.get("created_at"))
    return None


def label_history(timeline: list[Mapping[str, Any]], label: str) -> LabelHistory:
    """The newest `labeled` event for `label`, and every push after it: a `committed` or `head_ref_force_pushed`
    item later in the timeline (GitHub lists it chronologically), or a commit dated after the label."""
    newest: int | None = None
    for index, item in enumerate(timeline):
        if item.get("event") == "labeled" and _object(item, "label").get("name") == label:
            newest = index
    if newest is None:
        return LabelHistory()
    labeled = timeline[newest]
    actor = _object(labeled, "actor")
    added = _timestamp(labeled.get("created_at"))
    pushed = []
    for index, item in enumerate(timeline):
        push = _push_of(item)
        if push is None:
            continue
        description, when = push
        if index > newest or (when is not None and added is not None and when > added):
            pushed.append(description)
    return LabelHistory(actor=actor.get("login"), actor_type=actor.get("type"),
                        added_at=added.isoformat() if added else None, pushed_after=tuple(pushed))


def _timeline(pr: Any) -> list[Mapping[str, Any]]:
    # raw_data of a TimelineEvent is the item as GitHub sent it (no further request)
    return [event.raw_data for event in pr.get_issue_timeline()]


def _issue_events(pr: Any) -> list[Mapping[str, Any]]:
    """The PR's issue events, oldest first, as {event, created_at, label: {name}} from the listed pages alone
    (an IssueEvent's raw_data would fetch each event once more)."""
    return [{"event": item.event, "created_at": item.created_at.isoformat() if item.created_at else None,
             **({"label": {"name": item.label.name}} if item.event == "labeled" and item.label else {})}
            for item in pr.get_issue_events()]


RETARGETED = "its base branch was changed"


def retargeted_after_label(events: list[Mapping[str, Any]], label: str) -> bool:
    """Whether the PR's issue events (GitHub lists `base_ref_changed` there, not in the timeline; oldest first)
    hold a retarget after the newest `labeled` event for `label`, or hold one and no such label: the label binds
    the base it was given for, as it binds the head."""
    newest = max((index for index, item in enumerate(events)
                  if item.get("event") == "labeled" and _object(item, "label").get("name") == label), default=-1)
    return any(item.get("event") == "base_ref_changed" for item in events[newest + 1:])


def last_retarget(events: list[Mapping[str, Any]]) -> datetime | None:
    """When the PR's base branch was last changed, from its issue events, or None when it never was."""
    changes = [_timestamp(item.get("created_at")) for item in events if item.get("event") == "base_ref_changed"]
    return max((when for when in changes if when is not None), default=None)


def _approvals(repo: Any, pr: Any, head_sha: str, retargeted: datetime | None) -> tuple[str, ...]:
    """Logins whose latest review approves `head_sha` and who may trigger; a review given before the PR was
    retargeted (`retargeted`) approved a merge into another branch, and does not count."""
    latest: dict[str, tuple[str, str]] = {}
    for review in pr.get_reviews():
        if review.user is None or review.state in ("COMMENTED", "PENDING"):
            continue
        submitted = _timestamp(review.raw_data.get("submitted_at"))
        if retargeted is not None and (submitted is None or submitted <= retargeted):
            continue
        latest[review.user.login] = (review.state, review.commit_id)
    approvers = []
    for login, (state, commit) in sorted(latest.items()):
        if state == "APPROVED" and commit == head_sha and trigger_role_ok(*_permission(repo, login)):
            approvers.append(login)
    return tuple(approvers)


def contents_or_none(repo: Any, path: str, ref: str) -> Any | None:
    """The file `path` at `ref`, or None when it does not exist there (a directory counts as absent)."""
    from github.GithubException import GithubException

    try:
        content = repo.get_contents(path, ref=ref)
    except GithubException as e:
        if e.status == 404:
            return None
        raise
    if isinstance(content, list) or getattr(content, "type", "file") != "file":
        return None
    return content


def blob_shas(repo: Any, head_sha: str, paths: tuple[str, ...]) -> dict[str, str | None]:
    """{path: blob SHA at head_sha, None when absent}: one recursive tree call, then the contents API only for
    paths a truncated (very large) tree left out."""
    tree = repo.get_git_tree(head_sha, recursive=True)
    found = {element.path: element.sha for element in tree.tree if element.type == "blob"}
    truncated = bool(tree.raw_data.get("truncated"))
    out: dict[str, str | None] = {}
    for path in paths:
        if path in found or not truncated:
            out[path] = found.get(path)
        else:
            content = contents_or_none(repo, path, head_sha)
            out[path] = content.sha if content is not None else None
    return out


def _json_object(raw: Any, what: str, key: str) -> None:
    """PyGithub wraps an answer that is not JSON as {"data": text}; a fetched object must have its `key`."""
    if not isinstance(raw, dict) or key not in raw:
        raise GitHubError(f"GitHub's answer for {what} was not a JSON object with '{key}'")


def _checked_requirement(settings: GitHubSettings, requirement: GateRequirement) -> str:
    """The flow's label, once the settings and every path are known good (before anything is asked of GitHub)."""
    missing = settings.missing()
    if missing:
        raise GitHubError(f"GitHub settings missing: {', '.join(missing)}")
    label = LABELS.get(requirement.flow)
    if label is None:
        raise GitHubError(f"unknown flow '{requirement.flow}'")
    for path in (requirement.plan_path, *requirement.read_paths):
        problem = plan_path_problem(path)
        if problem:
            raise GitHubError(problem)
    return label


def _pull(settings: GitHubSettings, repo: Any, number: int) -> tuple[Any, str | None]:
    """The PR and its state (a lazy client GETs it on the first attribute read), checked to be a PR."""
    try:
        pr = repo.get_pull(number)
        state: str | None = pr.state
    except Exception as e:
        if _is_status(e, 404):
            raise GitHubError(f"PR #{number} not found in {settings.full_name}") from None
        raise
    _json_object(pr.raw_data, f"PR #{number}", "number")
    return pr, state


@dataclass(frozen=True)
class _Ends:
    """The PR's head and base, None where GitHub left them out (a deleted fork)."""

    head_sha: str | None
    head_repo: Any
    base_repo: Any
    base_ref: str | None

    @classmethod
    def of(cls, pr: Any) -> _Ends:
        head, base = pr.head, pr.base
        if head is None:
            return cls(None, None, base.repo if base is not None else None, base.ref if base is not None else None)
        return cls(head.sha, head.repo, base.repo if base is not None else None, base.ref if base is not None else None)

    @property
    def from_base(self) -> bool:
        """Same repository by name, and by id when GitHub gives one (a renamed fork is not the base)."""
        head, base = self.head_repo, self.base_repo
        if head is None or base is None or head.full_name.lower() != base.full_name.lower():
            return False
        return head.id is None or head.id == base.id


def fetch_facts(settings: GitHubSettings, requirement: GateRequirement) -> PullRequestFacts:
    """Ask GitHub everything the gate needs. Raises GitHubError."""
    label = _checked_requirement(settings, requirement)
    with _translate(settings, f"reading PR #{requirement.pr}"):
        repo = _client(settings).get_repo(settings.full_name)
        pr, state = _pull(settings, repo, requirement.pr)
        facts = _gathered(settings, requirement, repo, pr, label, state)
    log.debug("gate facts for %s PR #%s: %s", settings.full_name, requirement.pr, facts)
    return facts


def _gathered(settings: GitHubSettings, requirement: GateRequirement, repo: Any, pr: Any, label: str,
              state: str | None) -> PullRequestFacts:
    ends = _Ends.of(pr)
    history = label_history(_timeline(pr), label)
    events = _issue_events(pr)
    retargeted = (RETARGETED,) if retargeted_after_label(events, label) else ()
    role, permission = _permission(repo, history.actor) if history.actor else (None, None)
    paths = (requirement.plan_path, *requirement.read_paths)
    blobs = blob_shas(repo, ends.head_sha, paths) if ends.head_sha else dict.fromkeys(paths)
    approvals = (_approvals(repo, pr, ends.head_sha, last_retarget(events))
                 if requirement.require_approval and ends.head_sha else None)
    changed = {str(file.filename) for file in pr.get_files()}  # paginated; GitHub lists up to 3000
    return PullRequestFacts(
        number=pr.number,
        is_open=(state == "open") if state else None,
        merged=pr.merged,
        draft=pr.draft,
        from_base_repo=ends.from_base,
        head_repo=ends.head_repo.full_name if ends.head_repo is not None else None,
        labels=tuple(lb.name for lb in pr.labels or ()),
        head_sha=ends.head_sha,
        label_actor=history.actor,
        label_added_at=history.added_at,
        label_actor_role=role,
        label_actor_permission=permission,
        label_actor_type=history.actor_type,
        pushed_after_label=(*history.pushed_after, *retargeted),
        plan_blob_sha=blobs[requirement.plan_path],
        file_blob_shas={path: blobs[path] for path in requirement.read_paths},
        approvals=approvals,
        plan_changed=requirement.plan_path in changed,
        base_ref=ends.base_ref,
        allowed_bases=(repo.default_branch, *settings.base_branches),
    )


def _facts_or_error(settings: GitHubSettings, requirement: GateRequirement) -> PullRequestFacts:
    try:
        return fetch_facts(settings.serving(requirement.repository), requirement)
    except GitHubError as e:
        return PullRequestFacts(number=requirement.pr, error=secrets.mask(str(e)))


def check_gate(settings: GitHubSettings, requirement: GateRequirement) -> GateDecision:
    """Fetch the facts and evaluate the gate. Never raises: problems become a refusal (fail closed)."""
    return evaluate_gate(_facts_or_error(settings, requirement), requirement, settings.trusted_bots)


def recheck_gate(settings: GitHubSettings, requirement: GateRequirement, first: GateDecision) -> GateDecision:
    """Fetch the facts again right before executing and compare with the first decision. Never raises."""
    if not first.allowed:
        return first
    # The files pinned by the first check are re-read whether or not the caller's requirement lists them.
    requirement = replace(requirement, read_paths=tuple(dict.fromkeys((*requirement.read_paths,
                                                                        *first.file_blob_shas))))
    return recheck(first, _facts_or_error(settings, requirement), requirement, settings.trusted_bots)


# --------------------------------------------------------------------------- writes
def claim_trigger_label(settings: GitHubSettings, requirement: GateRequirement) -> bool:
    """Claim the run by removing the flow's label (one label, one run), right before the first change: True when
    this call removed it, False when it was already gone (404: another run, or a person, took it). Raises
    GitHubError when GitHub could not be asked."""
    label = LABELS.get(requirement.flow)
    if label is None:
        raise GitHubError(f"unknown flow '{requirement.flow}'")
    settings = settings.serving(requirement.repository)
    with _translate(settings, f"removing label '{label}' from PR #{requirement.pr}"):
        g = _client(settings)
        issue = g.get_repo(settings.full_name).get_issue(requirement.pr)
        try:
            issue.remove_from_labels(label)
        except Exception as e:
            if _is_status(e, 404):
                return False
            raise
    return True


def restore_trigger_label(settings: GitHubSettings, requirement: GateRequirement) -> None:
    """Put the flow's label back: the run that claimed it changed nothing, so a person may simply retry."""
    label = LABELS.get(requirement.flow)
    if label is None:
        raise GitHubError(f"unknown flow '{requirement.flow}'")
    settings = settings.serving(requirement.repository)
    written(settings, f"adding label '{label}' back to PR #{requirement.pr}",  # adding it twice is harmless
            lambda: _client(settings).get_repo(settings.full_name).get_issue(requirement.pr).add_to_labels(label))


def status_descriptions(settings: GitHubSettings, repository: str | None, sha: str, context: str) -> list[str]:
    """The descriptions of the statuses `context` has on `sha`, newest first. Raises GitHubError."""
    settings = settings.serving(repository)
    with _translate(settings, f"reading status {context} on {short(sha)}"):
        repo = _client(settings).get_repo(settings.full_name)
        # GET /repos/{o}/{r}/commits/{ref}/statuses, newest first: the documented listing (PyGithub's
        # Commit.get_statuses asks the undocumented /statuses/{sha}), through PyGithub's public `requester`
        _, statuses = repo.requester.requestJsonAndCheck("GET", f"{repo.url}/commits/{quote(sha, safe='')}/statuses")
        return [str(status.get("description") or "") for status in statuses or ()
                if isinstance(status, dict) and status.get("context") == context]


def audit_marker(requirement: GateRequirement) -> str:
    return flow_marker(requirement.flow, requirement.plan_path)


def upsert_audit_comment(settings: GitHubSettings, requirement: GateRequirement, body_markdown: str) -> int:
    """Create or update the single audit comment for this plan and flow; return its id.

    The comment is found by a hidden marker (``audit_marker``) among the comments of the token's user. A POST
    is never retried blindly (``written``): after a failed POST the comments are listed again, and a comment the
    server stored despite the failure is edited instead of posting a duplicate.
    """
    problem = plan_path_problem(requirement.plan_path)
    if problem:
        raise GitHubError(problem)
    settings = settings.serving(requirement.repository)
    marker = audit_marker(requirement)
    newest = secrets.mask(body_markdown)
    body = sticky_body(marker, newest, None)
    action = f"writing the audit comment on PR #{requirement.pr}"
    with _translate(settings, action):
        g = _client(settings)
        me = _token_login(g)
        issue = g.get_repo(settings.full_name).get_issue(requirement.pr)

    def ours(comment: Any) -> bool:
        user = comment.user
        if user is None or marker not in (comment.body or "").splitlines():
            return False
        # An app installation token (e.g. Actions' GITHUB_TOKEN) cannot read /user: then trust bot authors only.
        return bool(user.login == me) if me is not None else user.type == "Bot"

    def existing() -> int | None:
        found = [c for c in issue.get_comments() if ours(c)]
        if not found:
            return None
        comment = found[0]
        if len(found) > 1:
            log.warning("PR #%s has %d audit comments for %s; updating the oldest",
                        requirement.pr, len(found), requirement.plan_path)
        edited = sticky_body(marker, newest, comment.body)  # earlier runs stay, collapsed, under it
        if comment.body != edited:
            comment.edit(edited)
        return int(comment.id)

    return written(settings, action, lambda: int(issue.create_comment(body).id), existing)


STATUS_DESCRIPTION_LIMIT = 140
"""GitHub refuses a longer status description (422)."""


def set_commit_status(settings: GitHubSettings, repository: str | None, sha: str, context: str, state: CommitState,
                      description: str, target_url: str | None = None, policy: RetryPolicy = GITHUB_RETRY) -> None:
    """POST a commit status, retried on `policy` (``written``): a repeated status is harmless (the newest per
    context counts). Raises GitHubError."""
    if state not in set(CommitState):
        raise GitHubError(f"unknown commit status state {state!r}")
    settings = settings.serving(repository)
    text = secrets.mask(description)
    if len(text) > STATUS_DESCRIPTION_LIMIT:
        text = text[:STATUS_DESCRIPTION_LIMIT - 1] + "…"
    link = {"target_url": target_url} if target_url else {}

    def post() -> None:
        # A lazy client's commit is its URL: the POST /repos/{o}/{r}/statuses/{sha} is the only request
        commit = _client(settings).get_repo(settings.full_name).get_commit(sha)
        commit.create_status(state, description=text, context=context, **link)

    written(settings, f"setting status {context} on {short(sha)}", post, policy=policy)


@dataclass(frozen=True)
class PullRequestView:
    head_sha: str
    url: str
    blobs: Mapping[str, str | None]
    """{path: blob SHA at the head, None when absent} for the paths asked about."""


def pull_request_view(settings: GitHubSettings, repository: str | None, pr: int,
                      paths: tuple[str, ...]) -> PullRequestView:
    """The PR's head, its web page, and the blob SHAs of `paths` at its head. Raises GitHubError."""
    for path in paths:
        problem = plan_path_problem(path)
        if problem:
            raise GitHubError(problem)
    settings = settings.serving(repository)
    with _translate(settings, f"reading PR #{pr}"):
        repo = _client(settings).get_repo(settings.full_name)
        pull = repo.get_pull(pr)
        _json_object(pull.raw_data, f"PR #{pr}", "number")
        head = str(pull.head.sha)
        return PullRequestView(head, str(pull.html_url), blob_shas(repo, head, paths))


def changed_files(settings: GitHubSettings, repository: str | None, pr: int) -> list[str]:
    """The paths the PR changes (GitHub lists up to 3000). Raises GitHubError."""
    settings = settings.serving(repository)
    with _translate(settings, f"listing the files of PR #{pr}"):
        pull = _client(settings).get_repo(settings.full_name).get_pull(pr)
        return [str(file.filename) for file in pull.get_files()]


def _token_login(g: Any) -> str | None:
    """Login of the token's user, or None for a token that cannot read /user (an app installation)."""
    from github.GithubException import GithubException

    try:
        login: str = g.get_user().login
        return login
    except GithubException as e:
        if e.status in (403, 404):
            return None
        raise


# Public names for other integrations (integrations/pull_request.py builds on the same client and error policy).
client = _client
translate_errors = _translate
token_login = _token_login
