"""A local GitHub REST test server: stateful, schema-shaped bodies, fault injection and a request log.

    sandbox = GitHubSandbox().start()      # 127.0.0.1, free port
    token = sandbox.add_user("alice")
    sandbox.create_repo("acme/infra")
    ...
    sandbox.stop()

Control endpoints (not logged, not faulted): ``POST /_sandbox/faults`` (JSON like ``inject()``'s keywords),
``DELETE /_sandbox/faults``, ``GET /_sandbox/requests``, ``GET /_sandbox/health``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ..http import SandboxHTTPServer
from .bodies import Bodies
from .state import GitHubState, Issue, Repo, SandboxError, blob_sha

DOCS = "https://docs.github.com/rest"


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path`` (regexes, searched) with ``status``.

    ``status=None`` only adds ``latency``. ``store_then_fail``: handle the request normally (state changes
    stick) and then answer with the fault. ``rate_limit_reset_in``: make it a primary rate-limit response
    (403 by default, ``x-ratelimit-remaining: 0``, ``x-ratelimit-reset`` = now + N seconds).
    """

    method: str = ".*"
    path: str = ".*"
    status: int | None = 500
    times: int = 1
    latency: float = 0.0
    retry_after: int | None = None
    rate_limit_reset_in: int | None = None
    store_then_fail: bool = False
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Sent as is instead of JSON (an HTML error page, a truncated body), with `content_type`.
    raw: str | None = None
    content_type: str = "text/html; charset=utf-8"
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.hits < self.times and re.fullmatch(self.method, method, re.I) is not None
                and re.search(self.path, path) is not None)

    def response(self) -> tuple[int, dict[str, str], Any]:
        assert self.status is not None
        headers = dict(self.headers)
        body = self.body
        if self.rate_limit_reset_in is not None:
            headers.setdefault("x-ratelimit-limit", "5000")
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-used"] = "5000"
            headers["x-ratelimit-reset"] = str(int(time.time()) + self.rate_limit_reset_in)
            headers.setdefault("x-ratelimit-resource", "core")
            if body is None:
                body = {"message": "API rate limit exceeded for user ID 1.",
                        "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                        "status": str(self.status)}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if body is None:
            body = _error_body(self.status, _REASONS.get(self.status, "Sandbox fault"))
        return self.status, headers, body


EVENTS_API_ONLY = frozenset({"base_ref_changed"})
"""Issue event types GitHub lists in the issue events API but not in the timeline (its issue event types page)."""
_REASONS = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 403: "Forbidden",
            429: "Too Many Requests", 401: "Bad credentials", 404: "Not Found", 422: "Validation Failed"}


def _error_body(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return body


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, list[str]]
    login: str | None
    body: Any
    status: int
    response: Any
    response_headers: dict[str, str]
    operation: tuple[str, str] | None  # (OpenAPI path template, method) when routed
    faulted: bool
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Handler = Callable[["_Call"], tuple[int, Any]]


@dataclass
class _Call:
    method: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    login: str
    headers: dict[str, str] = field(default_factory=dict)

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


class GitHubSandbox(GitHubState):
    """The state plus an HTTP server. All seeding methods of ``GitHubState`` are available here."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.faults: list[Fault] = []
        self.log: list[RequestRecord] = []
        self.rate_remaining = 5000
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.b = Bodies(self, "http://127.0.0.1")
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._register_routes()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> GitHubSandbox:
        sandbox = self

        class _Handler(_RequestHandler):
            owner = sandbox

        self._httpd = SandboxHTTPServer((self.host, self.port), _Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self.b = Bodies(self, self.url)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"github-sandbox-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GitHubSandbox:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ faults and log
    def inject(self, method: str = ".*", path: str = ".*", status: int | None = 500, *, times: int = 1,
               **kwargs: Any) -> Fault:
        """Fault the next ``times`` requests matching method and path regexes. See ``Fault``."""
        fault = Fault(method=method, path=path, status=status, times=times, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests, optionally filtered by exact method and a path regex (searched)."""
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method.upper())
                    and (path is None or re.search(path, r.path))]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    # ------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
               ) -> tuple[int, dict[str, str], Any, tuple[str, str] | None, str | None]:
        split = urlsplit(raw_path)
        path, query = split.path.rstrip("/") or "/", parse_qs(split.query)
        auth = headers.get("authorization", "")
        token = auth.split(None, 1)[1].strip() if " " in auth else ""
        with self.lock:
            login = self.tokens.get(token)
        if not token:
            return 401, {}, _error_body(401, "Requires authentication"), None, None
        if login is None:
            return 401, {}, _error_body(401, "Bad credentials"), None, None
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return 400, {}, _error_body(400, "Problems parsing JSON"), None, login
        for verb, pattern, template, handler in self._routes:
            match = pattern.fullmatch(path)
            if verb != method or match is None:
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            call = _Call(method, params, query, body, login, headers)
            try:
                with self.lock:
                    status, payload = handler(call)
                    extra: dict[str, str] = {}
                    if isinstance(payload, list):
                        payload, extra = self._paginate(raw_path, call, payload)
            except SandboxError as e:
                return e.status, {}, _error_body(e.status, e.message, e.errors), (template, verb.lower()), login
            return status, extra, payload, (template, verb.lower()), login
        return 404, {}, _error_body(404, "Not Found"), None, login

    def operation_for(self, method: str, path: str) -> tuple[str, str] | None:
        """The (OpenAPI path template, method) a request maps to, whatever its outcome."""
        path = urlsplit(path).path.rstrip("/") or "/"
        for verb, pattern, template, _ in self._routes:
            if verb == method and pattern.fullmatch(path):
                return template, verb.lower()
        return None

    def _paginate(self, raw_path: str, call: _Call, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(call.q("per_page", "30") or 30), 100)
        page = max(int(call.q("page", "1") or 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        split = urlsplit(raw_path)
        query = {k: v for k, v in parse_qs(split.query).items() if k != "page"}
        query["per_page"] = [str(per_page)]

        def link(n: int) -> str:
            q = "&".join(f"{k}={quote(v[0], safe='')}" for k, v in query.items())
            return f"<{self.url}{split.path}?{q}&page={n}>"

        links = []
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(1)}; rel="first"', f'{link(page - 1)}; rel="prev"']
        return chunk, ({"Link": ", ".join(links)} if links else {})

    # ------------------------------------------------------------ routes
    def _route(self, method: str, template: str, handler: Handler) -> None:
        def group(m: re.Match[str]) -> str:
            name = m.group(1)
            return f"(?P<{name}>.+)" if name in ("path", "ref", "name") else f"(?P<{name}>[^/]+)"

        pattern = re.compile(re.sub(r"\{(\w+)\}", group, re.escape(template).replace(r"\{", "{")
                                    .replace(r"\}", "}")))
        self._routes.append((method, pattern, template, handler))

    def _register_routes(self) -> None:
        r, R = self._route, "/repos/{owner}/{repo}"
        r("GET", "/user", lambda c: (200, self.b.private_user(c.login)))
        r("GET", "/rate_limit", lambda c: (200, self.b.rate_limit(self.rate_remaining, int(time.time()) + 3600)))
        r("GET", R, self._get_repo)
        r("GET", f"{R}/pulls", self._list_pulls)
        r("POST", f"{R}/pulls", self._create_pull_http)
        r("GET", f"{R}/pulls/{{pull_number}}", self._get_pull)
        r("PATCH", f"{R}/pulls/{{pull_number}}", self._patch_pull)
        r("GET", f"{R}/pulls/{{pull_number}}/reviews", self._reviews)
        r("GET", f"{R}/pulls/{{pull_number}}/files", self._pull_files)
        r("POST", f"{R}/statuses/{{sha}}", self._post_status)
        r("GET", f"{R}/commits/{{ref}}/statuses", self._list_statuses)
        r("GET", f"{R}/commits/{{ref}}/status", self._combined_status)
        r("GET", f"{R}/issues/comments/{{comment_id}}", self._get_comment)
        r("PATCH", f"{R}/issues/comments/{{comment_id}}", self._patch_comment)
        r("GET", f"{R}/issues/events/{{event_id}}", self._get_event)
        r("GET", f"{R}/issues/{{issue_number}}", self._get_issue)
        r("GET", f"{R}/issues/{{issue_number}}/events", self._events)
        r("GET", f"{R}/issues/{{issue_number}}/timeline", self._timeline)
        r("GET", f"{R}/issues/{{issue_number}}/labels", self._get_labels)
        r("POST", f"{R}/issues/{{issue_number}}/labels", self._post_labels)
        r("DELETE", f"{R}/issues/{{issue_number}}/labels/{{name}}", self._delete_label)
        r("GET", f"{R}/issues/{{issue_number}}/comments", self._list_comments)
        r("POST", f"{R}/issues/{{issue_number}}/comments", self._post_comment)
        r("GET", f"{R}/collaborators/{{username}}/permission", self._permission)
        r("GET", f"{R}/git/ref/{{ref}}", self._get_ref)
        r("POST", f"{R}/git/refs", self._create_ref)
        r("GET", f"{R}/git/trees/{{tree_sha}}", self._get_tree)
        r("GET", f"{R}/contents/{{path}}", self._get_contents)
        r("PUT", f"{R}/contents/{{path}}", self._put_contents)

    def _repo(self, c: _Call, role: str = "read") -> Repo:
        full = f"{c.params['owner']}/{c.params['repo']}"
        self.repo(full)
        self.require_role(full, c.login, role)
        return self.repos[full]

    @staticmethod
    def _num(c: _Call, key: str) -> int:
        try:
            return int(c.params[key])
        except ValueError:
            raise SandboxError(404, "Not Found") from None

    def _get_repo(self, c: _Call) -> tuple[int, Any]:
        return 200, self.b.repository(self._repo(c), full=True)

    def _list_pulls(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        state, head, base = c.q("state", "open"), c.q("head"), c.q("base")
        out = []
        for pr in sorted(repo.issues.values(), key=lambda i: -i.number):
            if not pr.is_pull or (state != "all" and pr.state != state):
                continue
            if head is not None:
                owner, _, ref = head.partition(":") if ":" in head else (repo.owner, "", head)
                if pr.head_repo is None or pr.head_repo.split("/")[0] != owner or pr.head_ref != ref:
                    continue
            if base is not None and pr.base_ref != base:
                continue
            out.append(self.b.pull_simple(repo, pr))
        return 200, out

    def _create_pull_http(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "write")
        body = c.body if isinstance(c.body, dict) else {}
        head, base, title = body.get("head"), body.get("base"), body.get("title")
        if not head or not base or not title:
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "PullRequest", "code": "missing_field", "field": "head/base/title"}])
        owner, _, ref = head.partition(":") if ":" in head else (repo.owner, "", head)
        head_full = f"{owner}/{repo.name}"
        if head_full not in self.repos or ref not in self.repos[head_full].branches:
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "PullRequest", "code": "invalid", "field": "head"}])
        if base not in repo.branches:
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "PullRequest", "code": "invalid", "field": "base"}])
        for pr in repo.issues.values():
            if pr.is_pull and pr.state == "open" and pr.head_repo == head_full and pr.head_ref == ref:
                raise SandboxError(422, "Validation Failed", [{
                    "resource": "PullRequest", "code": "custom",
                    "message": f"A pull request already exists for {owner}:{ref}."}])
        number = self._create_pull(repo, head_full, ref, base, title, body.get("body"), c.login,
                                   bool(body.get("draft", False)))
        return 201, self.b.pull(repo, repo.issues[number])

    def _get_pull(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        return 200, self.b.pull(repo, self.pull(repo.full_name, self._num(c, "pull_number")))

    def _patch_pull(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "write")
        pr = self.pull(repo.full_name, self._num(c, "pull_number"))
        body = c.body if isinstance(c.body, dict) else {}
        if "base" in body:  # first: an unknown branch refuses the whole edit
            self.change_base(repo.full_name, pr.number, str(body["base"]), c.login)
        if "title" in body:
            pr.title = str(body["title"])
        if "body" in body:
            pr.body = body["body"]
        if body.get("state") == "closed" and pr.state == "open":
            self.close_pr(repo.full_name, pr.number, c.login)
        elif body.get("state") == "open" and pr.state == "closed":
            self.reopen_pr(repo.full_name, pr.number, c.login)
        pr.updated = self.now()
        return 200, self.b.pull(repo, pr)

    def _reviews(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        pr = self.pull(repo.full_name, self._num(c, "pull_number"))
        return 200, [self.b.review(repo, pr, rv) for rv in pr.reviews]

    def _get_issue(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        return 200, self.b.issue(repo, self.issue(repo.full_name, self._num(c, "issue_number")))

    def _events(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        issue = self.issue(repo.full_name, self._num(c, "issue_number"))
        return 200, [self.b.event(repo, e) for e in issue.events]

    def _timeline(self, c: _Call) -> tuple[int, Any]:
        """Issue events (but those GitHub lists only in the issue events API) plus, for a PR, a `committed` item
        per commit on its head, in time order (as GitHub lists them, a commit by its committer date)."""
        repo = self._repo(c)
        issue = self.issue(repo.full_name, self._num(c, "issue_number"))
        items: list[tuple[float, int, Any]] = [(e.at, e.id, self.b.event(repo, e)) for e in issue.events
                                               if e.event not in EVENTS_API_ONLY]
        if issue.is_pull:
            items += [(commit.at, 0, self.b.committed(repo, commit))
                      for commit in self.pull_commits(repo.full_name, issue.number)]
        return 200, [body for _, _, body in sorted(items, key=lambda item: item[:2])]

    def _get_tree(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        commit = self.commits[self.resolve(repo.full_name, c.params["tree_sha"])]
        if c.q("recursive") is None:
            raise SandboxError(422, "the test server lists trees recursively only (pass recursive=1)")
        return 200, self.b.git_tree(repo, commit)

    def _get_event(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        event_id = self._num(c, "event_id")
        for issue in repo.issues.values():
            for event in issue.events:
                if event.id == event_id:
                    return 200, self.b.issue_event(repo, issue, event)
        raise SandboxError(404, "Not Found")

    def _get_labels(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        return 200, self.b.labels(repo, self.issue(repo.full_name, self._num(c, "issue_number")))

    def _post_labels(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "triage")
        issue = self.issue(repo.full_name, self._num(c, "issue_number"))
        raw = c.body.get("labels") if isinstance(c.body, dict) else c.body
        if not isinstance(raw, list) or not raw:
            raise SandboxError(422, "Invalid request.\n\nNo labels given.")
        for item in raw:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name:
                raise SandboxError(422, "Invalid request.\n\nInvalid label.")
            self.add_label(repo.full_name, issue.number, name, c.login)
        return 200, self.b.labels(repo, issue)

    def _delete_label(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "triage")
        issue = self.issue(repo.full_name, self._num(c, "issue_number"))
        self.remove_label(repo.full_name, issue.number, c.params["name"], c.login)
        return 200, self.b.labels(repo, issue)

    def _list_comments(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        issue = self.issue(repo.full_name, self._num(c, "issue_number"))
        return 200, [self.b.comment(repo, self.comments[repo.full_name][i]) for i in issue.comments]

    def _post_comment(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        issue = self.issue(repo.full_name, self._num(c, "issue_number"))
        body = c.body.get("body") if isinstance(c.body, dict) else None
        if not isinstance(body, str):
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        cid = self.add_comment(repo.full_name, issue.number, c.login, body)
        return 201, self.b.comment(repo, self.comments[repo.full_name][cid])

    def _comment(self, c: _Call) -> tuple[Repo, int]:
        repo = self._repo(c)
        cid = self._num(c, "comment_id")
        if cid not in self.comments[repo.full_name]:
            raise SandboxError(404, "Not Found")
        return repo, cid

    def _get_comment(self, c: _Call) -> tuple[int, Any]:
        repo, cid = self._comment(c)
        return 200, self.b.comment(repo, self.comments[repo.full_name][cid])

    def _patch_comment(self, c: _Call) -> tuple[int, Any]:
        repo, cid = self._comment(c)
        comment = self.comments[repo.full_name][cid]
        if comment.user != c.login:
            self.require_role(repo.full_name, c.login, "write")
        body = c.body.get("body") if isinstance(c.body, dict) else None
        if not isinstance(body, str):
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        return 200, self.b.comment(repo, self.edit_comment(repo.full_name, cid, body))

    def _pull_files(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        pr = self.pull(repo.full_name, self._num(c, "pull_number"))
        base = self.commits[repo.branches[pr.base_ref]].tree
        head = self.commits[pr.head_sha].tree
        changed = sorted(path for path in set(base) | set(head) if base.get(path) != head.get(path))
        return 200, [self.b.pull_file(repo, path, base.get(path), head.get(path), pr.head_sha) for path in changed]

    def _post_status(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "write")
        body = c.body if isinstance(c.body, dict) else {}
        sha = c.params["sha"]
        if sha not in self.commits:
            raise SandboxError(422, f"No commit found for SHA: {sha}")
        state = body.get("state")
        if state not in ("error", "failure", "pending", "success"):
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "Status", "code": "custom", "field": "state",
                                 "message": "state is not included in the list"}])
        description, target_url = body.get("description"), body.get("target_url")
        if description is not None and (not isinstance(description, str) or len(description) > 140):
            raise SandboxError(422, "Validation Failed",
                               [{"resource": "Status", "code": "custom", "field": "description",
                                 "message": "description is too long (maximum is 140 characters)"}])
        status = self.add_status(repo.full_name, sha, str(state), str(body.get("context") or "default"), c.login,
                                 description, target_url if isinstance(target_url, str) else None)
        return 201, self.b.commit_status(repo, status)

    def _commit_sha(self, repo: Repo, ref: str) -> str:
        try:
            return self.resolve(repo.full_name, ref)
        except SandboxError:
            raise SandboxError(404, "Not Found") from None

    def _list_statuses(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        sha = self._commit_sha(repo, c.params["ref"])
        return 200, [self.b.commit_status(repo, status) for status in self.statuses_for(repo.full_name, sha)]

    def _combined_status(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        sha = self._commit_sha(repo, c.params["ref"])
        latest = list(self.latest_statuses(repo.full_name, sha).values())
        return 200, self.b.combined_status(repo, sha, latest)

    def _permission(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        login = c.params["username"]
        if login not in self.users:
            raise SandboxError(404, "Not Found")
        return 200, self.b.permission(login, self.role_of(repo.full_name, login), repo.private)

    def _get_ref(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        ref = c.params["ref"]
        if not ref.startswith("heads/") or ref[len("heads/"):] not in repo.branches:
            raise SandboxError(404, "Not Found")
        return 200, self.b.git_ref(repo, ref[len("heads/"):])

    def _create_ref(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "write")
        body = c.body if isinstance(c.body, dict) else {}
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/heads/") or ref.count("/") < 2:
            raise SandboxError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if sha not in self.commits:
            raise SandboxError(422, "Object does not exist")
        branch = ref[len("refs/heads/"):]
        if branch in repo.branches:
            raise SandboxError(422, "Reference already exists")
        self.set_branch(repo.full_name, branch, str(sha))
        return 201, self.b.git_ref(repo, branch)

    def _get_contents(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c)
        ref = c.q("ref") or repo.default_branch
        tree = self.commits[self.resolve(repo.full_name, ref)].tree
        path = c.params["path"].strip("/")
        if path in tree:
            return 200, self.b.content_file(repo, path, tree[path], ref)
        listing = self.b.content_dir(repo, path, tree, ref)
        if not listing:
            raise SandboxError(404, "Not Found")
        return 200, listing

    def _put_contents(self, c: _Call) -> tuple[int, Any]:
        repo = self._repo(c, "write")
        body = c.body if isinstance(c.body, dict) else {}
        path = c.params["path"].strip("/")
        if not isinstance(body.get("message"), str) or not isinstance(body.get("content"), str):
            raise SandboxError(422, "Invalid request.\n\n\"message\" and \"content\" are required.")
        try:
            content = base64.b64decode(body["content"], validate=False)
        except ValueError:
            raise SandboxError(422, "content is not valid Base64") from None
        branch = str(body.get("branch") or repo.default_branch)
        if branch not in repo.branches:
            raise SandboxError(404, f"Branch {branch} not found")
        tree = self.commits[repo.branches[branch]].tree
        if path in tree:
            if "sha" not in body:
                raise SandboxError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
            if body["sha"] != blob_sha(tree[path]):
                raise SandboxError(409, f"{path} does not match {body['sha']}")
        created = path not in tree
        sha = self.make_commit(repo.branches[branch], {path: content}, body["message"], c.login)
        self.set_branch(repo.full_name, branch, sha)
        return (201 if created else 200), self.b.file_commit(repo, path, content, branch, sha)

    def snapshot(self, full_name: str, number: int) -> Issue:
        """The live Issue/PR object (read it under ``sandbox.lock`` if the server is busy)."""
        return self.issue(full_name, number)


class _RequestHandler(BaseHTTPRequestHandler):
    owner: GitHubSandbox
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    server_version = "GitHubSandbox/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def _serve(self) -> None:
        sb = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        split = urlsplit(self.path)
        if split.path.startswith("/_sandbox/"):
            self._control(split.path, raw_body)
            return
        fault = sb._take_fault(self.command, split.path)
        if fault is not None and fault.latency:
            time.sleep(fault.latency)
        faulted = fault is not None and fault.status is not None
        raw = fault.raw if faulted and fault is not None else None
        if faulted and fault is not None and not fault.store_then_fail:
            status, extra, payload = fault.response()
            operation, login = None, None
        else:
            status, extra, payload, operation, login = sb.handle(self.command, self.path, headers, raw_body)
            if faulted and fault is not None:
                status, extra, payload = fault.response()
        try:
            parsed_body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            parsed_body = raw_body.decode(errors="replace")
        with sb.lock:
            remaining = sb.rate_remaining = max(sb.rate_remaining - 1, 0) if status < 400 else sb.rate_remaining
            response_headers = {
                "Content-Type": "application/json; charset=utf-8",
                "x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(remaining),
                "x-ratelimit-reset": str(int(time.time()) + 3600), "x-ratelimit-resource": "core",
                "x-github-media-type": "github.v3; format=json",
            }
            response_headers.update(extra)
            if raw is None:
                operation = operation or sb.operation_for(self.command, split.path)
            sb.log.append(RequestRecord(
                method=self.command, path=split.path, query=parse_qs(split.query), login=login,
                body=parsed_body, status=status, response=payload if raw is None else raw,
                response_headers=response_headers, operation=operation, faulted=faulted, at=time.time()))
        if raw is None:
            self._send(status, response_headers, payload)
        else:  # not JSON, and no operation recorded: nothing for the schema check to read
            self._send_raw(status, {**fault.headers, "Content-Type": fault.content_type} if fault else {}, raw)

    def _control(self, path: str, raw_body: bytes) -> None:
        sb = self.owner
        if path == "/_sandbox/faults" and self.command == "POST":
            try:
                spec = json.loads(raw_body or b"{}")
                fault = sb.inject(**spec)
            except (ValueError, TypeError) as e:
                self._send(400, {}, _error_body(400, f"bad fault spec: {e}"))
                return
            self._send(201, {}, {"ok": True, "fault": asdict(fault)})
        elif path == "/_sandbox/faults" and self.command == "DELETE":
            sb.clear_faults()
            self._send(200, {}, {"ok": True})
        elif path == "/_sandbox/requests" and self.command == "GET":
            with sb.lock:
                records = [r.to_json() for r in sb.log]
            self._send(200, {}, records)
        elif path == "/_sandbox/health":
            self._send(200, {}, {"ok": True})
        else:
            self._send(404, {}, _error_body(404, "Not Found"))

    def _send_raw(self, status: int, headers: dict[str, str], text: str) -> None:
        data = text.encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
        data = b"" if status in (204, 304) else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
