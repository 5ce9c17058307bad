"""HTTP layer and the :class:`SandboxServer` Python API.

``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (client-go reuses connections) and Nagle disabled
(small JSON answers must not wait 40 ms for an ACK). Each request is parsed defensively, checked against the
fault rules, routed through :class:`~sandbox.kube.rest.Api`, logged (method, path, query, ``Kubectl-Command``,
``fieldManager``, status, server handling time) and answered; watches are streamed with chunked encoding.

Control endpoints (never faulted, never logged):

* ``GET /_sandbox/requests`` (``?since=SEQ``) / ``DELETE /_sandbox/requests``: the request log;
* ``GET|POST|DELETE /_sandbox/faults`` (``DELETE /_sandbox/faults/ID`` for one): fault rules;
* ``POST /_sandbox/objects``: seed objects (a JSON object or list);
* ``POST /_sandbox/stuck`` ``{"namespace","name","stuck"}``; ``POST /_sandbox/settle``;
  ``POST /_sandbox/fast-forward``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from re import error as re_error
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import yaml

from ..http import SandboxHTTPServer
from .auth import ADMIN, ADMIN_TOKEN, ANONYMOUS, Authenticator, User
from .autoscaling import to_v2
from .controllers import DEFAULT_BROKEN_IMAGE, Controllers
from .discovery import HPA_V1, HPA_V2, RESOURCES, ResourceType, by_kind, lookup
from .errors import ApiError, status_body
from .faults import FaultInjector
from .policy import PolicyController
from .rest import Api, Request, Response
from .schema import apply_defaults, check_types, validate
from .store import Obj, Store

MAX_BODY = 3 * 1024 * 1024
MAX_LOGGED_REQUESTS = 100_000
CONTROL_PREFIX = "/_sandbox/"



_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _request_timeout_s(query: str) -> float:
    """A request's `timeout` parameter (a Go duration such as `7s`, `1m0s`, `1.5s`), in seconds; unbounded
    without one."""
    value = parse_qs(query).get("timeout", [""])[0]
    parts = _DURATION.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return float("inf")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)

class _HTTPServer(SandboxHTTPServer):
    request_queue_size = 128
    sandbox: SandboxServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "infra-sandbox"
    sys_version = ""
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the request log is kept in memory instead)."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, BREW, ...) is routed too and answered 405 as a Status, not stdlib's 501."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines/headers: answer a JSON Status instead of stdlib's HTML page."""
        self.close_connection = True
        body = json.dumps(status_body(code, message or explain or "bad request")).encode()
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024).strip().split(b";")[0]
                size = int(size_line, 16)
                if size == 0:
                    self.rfile.readline(1024)
                    break
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "request entity too large", "RequestEntityTooLarge")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY:
            raise ApiError(413, "request entity too large", "RequestEntityTooLarge")
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        start = time.perf_counter()
        sandbox = self.server.sandbox
        split = urlsplit(self.path)
        path, query_s = split.path, split.query
        record: dict[str, Any] = {
            "method": self.command,
            "path": path,
            "query": query_s,
            "command": self.headers.get("Kubectl-Command", ""),
            "session": self.headers.get("Kubectl-Session", ""),
            "field_manager": parse_qs(query_s).get("fieldManager", [""])[0],
            "user_agent": self.headers.get("User-Agent", ""),
            "time": time.time(),
        }
        try:
            body = self._read_body()
        except ApiError as e:
            self.close_connection = True
            self._send(Response(e.code, e.status()))
            return
        except (ValueError, OSError):
            self.close_connection = True
            self._send(Response(400, status_body(400, "malformed request body framing")))
            return
        if path.startswith(CONTROL_PREFIX):
            self._send(sandbox._control(self.command, path, query_s, body))
            return
        if sandbox.latency_s > 0:
            sandbox.stopped.wait(sandbox.latency_s)
        fault = sandbox.faults.match(self.command, path, record["command"], record["field_manager"])
        if fault is not None:
            record["fault"] = fault.rule_id
            if fault.latency_s > 0:
                # cut short by stop(), so teardown never waits; and by the request's own `?timeout=` (kubectl's
                # --request-timeout), which an API server enforces on its handling: a write held that long is
                # committed then, as a real server's handler goes on after its timeout filter answered 504
                held = min(fault.latency_s, _request_timeout_s(query_s))
                sandbox.stopped.wait(held)
            if fault.drop or sandbox.stopping:
                record.update(status=0, duration_s=time.perf_counter() - start)
                sandbox._log(record)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.status is not None:
                err = ApiError(fault.status, fault.message or f"sandbox injected fault (HTTP {fault.status})")
                resp = Response(fault.status, err.status())
                if fault.retry_after is not None:
                    resp.headers["Retry-After"] = (
                        str(int(fault.retry_after)) if float(fault.retry_after).is_integer() else str(fault.retry_after)
                    )
                record.update(status=fault.status, duration_s=time.perf_counter() - start)
                sandbox._log(record)
                self._send(resp)
                return
        query = dict(parse_qsl(query_s, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            user = sandbox.authenticator.authenticate(headers.get("authorization", ""))
        except ApiError as e:
            record.update(status=e.code, duration_s=time.perf_counter() - start)
            sandbox._log(record)
            self._send(Response(e.code, e.status()))
            return
        record["user"] = user.name
        try:
            resp = sandbox.api.handle(Request(self.command, path, query, headers, body, user))
        except Exception as e:  # last line of defence: the server never dies on a request
            resp = Response(500, status_body(500, f"internal error: {type(e).__name__}: {e}"))
        record.update(resp.audit)
        if resp.stream is not None:
            record.update(status=resp.code, duration_s=time.perf_counter() - start, watch=True)
            sandbox._log(record)
            self._stream(resp)
            return
        # logged before the answer goes out, so a client that has its answer always finds its request logged
        data = self._encode(resp)
        record.update(status=resp.code, duration_s=time.perf_counter() - start)
        sandbox._log(record)
        if fault is not None and fault.answer_late_s > 0:
            sandbox.stopped.wait(fault.answer_late_s)  # served and logged; only the answer is late
        self._send(resp, data)

    @staticmethod
    def _encode(resp: Response) -> bytes:
        if isinstance(resp.body, bytes | bytearray):
            return bytes(resp.body)
        return json.dumps(resp.body, separators=(",", ":")).encode()

    def _send(self, resp: Response, data: bytes | None = None) -> None:
        if data is None:
            data = self._encode(resp)
        try:
            self.send_response(resp.code)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache, private")
            for k, v in resp.headers.items():
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _stream(self, resp: Response) -> None:
        assert resp.stream is not None
        try:
            self.send_response(resp.code)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            self.wfile.flush()
            for chunk in resp.stream:
                if chunk is None:
                    if self._client_gone() or self.server.sandbox.stopping:
                        break
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        finally:
            self.close_connection = True
            close = getattr(resp.stream, "close", None)
            if close is not None:
                close()


class SandboxServer:
    """A sandbox Kubernetes API server on 127.0.0.1.

    >>> srv = SandboxServer().start()
    >>> srv.create_deployment("default", "web", replicas=2)
    >>> srv.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rollout_delay: float = 0.05,
        hpa_delay: float = 0.05,
        seed: int = 0,
        namespaces: Iterable[str] = ("default", "kube-system", "kube-public"),
        *,
        broken_image: str = DEFAULT_BROKEN_IMAGE,
        node_allocatable: dict[str, str] | None = None,
        hpa_sync_period: float = 15.0,
        hpa_downscale_stabilization: float = 300.0,
        anonymous_is_admin: bool = True,
        latency_s: float = 0.0,
    ) -> None:
        self.host = host
        self.latency_s = latency_s
        """Added to every API request (not the control endpoints): a cluster some way off. Settable while running."""
        self.store = Store()
        self.controllers = Controllers(
            self.store,
            rollout_delay,
            hpa_delay,
            broken_image=broken_image,
            node_allocatable=node_allocatable,
            hpa_sync_period=hpa_sync_period,
            hpa_downscale_stabilization=hpa_downscale_stabilization,
            seed=seed,
        )
        PolicyController(self.store, self.controllers.sync_replicaset)
        self.authenticator = Authenticator(ADMIN if anonymous_is_admin else ANONYMOUS)
        self.faults = FaultInjector(seed)
        self.api = Api(self.store, lambda: f"{self.host}:{self.port}")
        self._requests: list[dict[str, Any]] = []
        self._req_lock = threading.Lock()
        self._seq = 0
        self.stopping = False
        self.stopped = threading.Event()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.sandbox = self
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._https: _HTTPServer | None = None
        self._https_thread: threading.Thread | None = None
        for ns in namespaces:
            self.create_namespace(ns)

    # --- life cycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def https_url(self) -> str:
        """The HTTPS listener (started on first use) that token-authenticated kubectl talks to: client-go sends
        bearer tokens only over TLS."""
        with self._req_lock:
            if self._https is None:
                from . import tls  # cryptography costs ~0.3 s to import: only servers with tokens pay it

                httpd = _HTTPServer((self.host, 0), _Handler)
                httpd.sandbox = self
                httpd.socket = tls.server_context().wrap_socket(httpd.socket, server_side=True)
                self._https = httpd
                self._https_thread = threading.Thread(
                    target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-https", daemon=True
                )
                self._https_thread.start()
            return f"https://{self.host}:{self._https.server_address[1]}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end watches, stop controllers. Idempotent."""
        if self.stopping:
            return
        self.stopping = True
        self.stopped.set()
        self.store.close()
        self.controllers.stop()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
        if self._https is not None and self._https_thread is not None:
            self._https.shutdown()
            self._https_thread.join(timeout=5)
            self._https.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_kubeconfig(
        self, path: str | Path, context: str = "sandbox", namespace: str = "default", token: str = ADMIN_TOKEN
    ) -> Path:
        """Write a kubeconfig for this server and return its path. With the admin's token it points at the plain
        HTTP listener (kubectl sends no token there: requests without one act as the admin); with any other
        token at the HTTPS listener, trusting its certificate, so kubectl authenticates with the token."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cluster: dict[str, str] = {"server": self.url}
        if token != ADMIN_TOKEN:
            from . import tls

            cluster = {"server": self.https_url, "certificate-authority-data": tls.ca_data()}
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    # --- state and seeding ---------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The stored object (a copy) or None; ``kind`` may be Kind, plural, singular or short name."""
        return self.store.get(lookup(kind), namespace, name)

    def list_objects(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        """Stored objects of a kind (copies), optionally in one namespace and matching a label selector."""
        return self.store.list(lookup(kind), namespace, label_selector)[0]

    def create(self, obj: Obj, namespace: str | None = None) -> Obj:
        """Create any served object as a client's POST would (defaults, validation, controllers run).

        The namespace comes from ``namespace`` or the object (default ``default``). Raises ValueError for
        kinds the sandbox does not serve and :class:`~sandbox.kube.errors.ApiError` (400/404/409/422) as the
        API would answer.
        """
        r, obj = self._storage_form(obj)
        check_types(obj)
        meta = obj.setdefault("metadata", {})
        if r.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        if r.kind != "Namespace":
            obj.pop("status", None)
        apply_defaults(r, obj)
        validate(r, obj)
        return copy.deepcopy(self.store.create(r, obj))

    def update(self, obj: Obj) -> Obj:
        """Write an object back as a client would (resourceVersion checked if set)."""
        r, obj = self._storage_form(obj)
        check_types(obj)
        apply_defaults(r, obj)
        validate(r, obj)
        return copy.deepcopy(self.store.update(r, obj))

    @staticmethod
    def _storage_form(obj: Obj) -> tuple[ResourceType, Obj]:
        """The served type of ``obj`` in its storage version, and a copy of ``obj`` converted to it."""
        r = by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if r is None:
            raise ValueError(f"unsupported object {obj.get('apiVersion')}/{obj.get('kind')}")
        if r is HPA_V1:
            return HPA_V2, to_v2(obj)
        return r, copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.store.delete(lookup(kind), namespace, name)

    def create_namespace(self, name: str) -> Obj:
        existing = self.store.get(lookup("namespaces"), "", name)
        if existing is not None:
            return existing
        return self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def create_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        containers: list[dict[str, Any]] | None = None,
        image: str = "nginx:1.25",
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        revision_history_limit: int | None = None,
        wait: bool = True,
    ) -> Obj:
        """Create a Deployment selecting ``app=<name>`` (namespace created if missing).

        ``wait`` finishes the rollout (all pending controller work, via :meth:`fast_forward`) before returning,
        so state assertions start from a settled object whatever ``rollout_delay`` is.
        """
        self.create_namespace(namespace)
        labels = labels or {"app": name}
        spec: dict[str, Any] = {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": containers or [{"name": "app", "image": image}]},
            },
        }
        if revision_history_limit is not None:
            spec["revisionHistoryLimit"] = revision_history_limit
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
        if annotations:
            meta["annotations"] = dict(annotations)
        self.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec})
        if wait:
            self.fast_forward()
        obj = self.get("deployment", namespace, name)
        assert obj is not None
        return obj

    def create_hpa(
        self,
        namespace: str,
        name: str,
        target: str,
        min_replicas: int,
        max_replicas: int,
        target_kind: str = "Deployment",
        wait: bool = True,
    ) -> Obj:
        """Create an autoscaling/v2 HPA on ``target`` (CPU 80 % metric, which the sandbox does not evaluate)."""
        obj = self.create(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
                    "minReplicas": min_replicas,
                    "maxReplicas": max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                        }
                    ],
                },
            }
        )
        if wait:
            self.fast_forward()
        return obj

    def seed(self, objects: Iterable[Obj]) -> list[Obj]:
        """Create several objects in order; a Namespace that already exists is kept (seeds are re-runnable
        against the pre-created ``default``), and namespaces of namespaced objects are created on demand."""
        out = []
        for o in objects:
            raw_meta = o.get("metadata")
            meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            if o.get("kind") == "Namespace" and o.get("apiVersion") == "v1":
                existing = self.store.get(lookup("namespaces"), "", str(meta.get("name", "")))
                if existing is not None:
                    out.append(existing)
                    continue
            elif meta.get("namespace"):
                self.create_namespace(str(meta["namespace"]))
            out.append(self.create(o))
        return out

    def seed_file(self, path: str | Path) -> list[Obj]:
        """Seed from a YAML/JSON file: one object, a list, a multi-document stream, or a ``v1/List``."""
        docs: list[Any] = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
        objects: list[Obj] = []
        for d in docs:
            if isinstance(d, list):
                objects.extend(d)
            elif isinstance(d, dict) and d.get("kind") == "List":
                objects.extend(d.get("items") or [])
            else:
                objects.append(d)
        created = self.seed(objects)
        self.fast_forward()
        return created

    def add_token(self, token: str, user: str, groups: Iterable[str] = ()) -> User:
        """Make a bearer token authenticate as ``user`` (authorised by the RBAC objects in the server)."""
        return self.authenticator.add_token(token, user, tuple(groups))

    def set_metric(self, namespace: str, hpa: str, utilization: float) -> None:
        """The average CPU utilisation (percent of requests) the HPA ``hpa`` observes now; it scales on it."""
        self.controllers.hpa.set_metric(namespace, hpa, utilization)

    def set_stuck(self, namespace: str, name: str, stuck: bool = True) -> None:
        """Make a deployment's rollouts end in ProgressDeadlineExceeded (or complete again)."""
        self.controllers.set_stuck(namespace, name, stuck)

    def settle(self, timeout_s: float = 5.0) -> bool:
        """Wait until controllers have no pending work (rollouts done, HPAs synced)."""
        return self.controllers.settle(timeout_s)

    def fast_forward(self, timeout_s: float = 5.0) -> bool:
        """Run all pending controller work now instead of after its delay (e.g. finish a slow rollout at a
        chosen moment), then settle. Work it triggers is queued with the normal delays and also waited for."""
        deadline = time.monotonic() + timeout_s
        while self.controllers.scheduler.fast_forward():
            if not self.settle(0.02) and time.monotonic() > deadline:
                return False
        return self.settle(max(deadline - time.monotonic(), 0.0))

    # --- request log ---------------------------------------------------------------------------------

    def _log(self, record: dict[str, Any]) -> None:
        with self._req_lock:
            self._seq += 1
            record["seq"] = self._seq
            self._requests.append(record)
            if len(self._requests) > MAX_LOGGED_REQUESTS:  # a long-running demo server must not grow forever
                del self._requests[: len(self._requests) - MAX_LOGGED_REQUESTS]

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Logged API requests (``seq``, ``method``, ``path``, ``query``, ``command``, ``status``,
        ``duration_s``, ``time``, and ``fault``/``watch`` when relevant), oldest first."""
        with self._req_lock:
            return [dict(r) for r in self._requests if r["seq"] > since]

    def clear_requests(self) -> None:
        with self._req_lock:
            self._requests.clear()

    # --- control endpoint ----------------------------------------------------------------------------

    def _control(self, method: str, path: str, query: str, body: bytes) -> Response:
        try:
            return self._control_inner(method, path, dict(parse_qsl(query)), body)
        except ApiError as e:
            return Response(e.code, e.status())
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, re_error) as e:
            return Response(400, status_body(400, f"bad control request: {type(e).__name__}: {e}"))

    def _control_inner(self, method: str, path: str, query: dict[str, str], body: bytes) -> Response:
        what = path[len(CONTROL_PREFIX) :].strip("/").split("/")
        payload: Any = json.loads(body.decode()) if body.strip() else None
        if what == ["requests"]:
            if method == "GET":
                since = int(query.get("since", "0"))
                return Response(200, {"items": self.requests(since)})
            if method == "DELETE":
                self.clear_requests()
                return Response(200, {"items": []})
        elif what == ["faults"]:
            if method == "GET":
                return Response(200, {"items": [r.to_dict() for r in self.faults.rules]})
            if method == "POST":
                specs = payload if isinstance(payload, list) else [payload]
                if "seed" in query:
                    self.faults.seed(int(query["seed"]))
                rules = [self.faults.add_dict(s) for s in specs if isinstance(s, dict)]
                if len(rules) != len(specs):
                    raise ValueError("each fault must be a JSON object")
                return Response(201, {"items": [r.to_dict() for r in rules]})
            if method == "DELETE":
                self.faults.clear()
                return Response(200, {"items": []})
        elif len(what) == 2 and what[0] == "faults" and method == "DELETE":
            ok = self.faults.remove(int(what[1]))
            return Response(200 if ok else 404, {"removed": ok})
        elif what == ["objects"] and method == "POST":
            objs = payload if isinstance(payload, list) else [payload]
            created = self.seed(o for o in objs if isinstance(o, dict))
            return Response(201, {"items": created})
        elif what == ["stuck"] and method == "POST":
            if not isinstance(payload, dict):
                raise ValueError("expected {namespace, name, stuck}")
            self.set_stuck(str(payload["namespace"]), str(payload["name"]), bool(payload.get("stuck", True)))
            return Response(200, {"ok": True})
        elif what == ["metrics"] and method == "POST":
            if not isinstance(payload, dict):
                raise ValueError("expected {namespace, name, utilization}")
            self.set_metric(str(payload["namespace"]), str(payload["name"]), float(payload["utilization"]))
            return Response(200, {"ok": True})
        elif what == ["tokens"] and method == "POST":
            if not isinstance(payload, dict):
                raise ValueError("expected {token, user, groups}")
            groups = payload.get("groups") or []
            if not isinstance(groups, list):
                raise ValueError("groups must be a list")
            found = self.add_token(str(payload["token"]), str(payload["user"]), [str(g) for g in groups])
            return Response(201, {"user": found.name, "groups": list(found.groups)})
        elif what == ["settle"] and method == "POST":
            return Response(200, {"settled": self.settle()})
        elif what == ["fast-forward"] and method == "POST":
            return Response(200, {"settled": self.fast_forward()})
        return Response(404, status_body(404, f"unknown control endpoint {method} {path}"))


__all__ = ["RESOURCES", "ResourceType", "SandboxServer"]
