"""Fuzz: malformed paths, methods, bodies and content types get 4xx ``Status`` answers; the server stays up.

Seeded and bounded (a few hundred requests over keep-alive connections), so it is quick and reproducible; a
failure message names the request that broke it.
"""

from __future__ import annotations

import copy
import http.client
import json
import random
import socket
from typing import Any
from urllib.parse import quote, urlsplit

from tests.fixtures.kube import KubeSandbox

SEED = 20261128
N_REQUESTS = 400

PATHS = [
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/configmaps/cfg",
    "/api/v1/namespaces/default",
    "/api/v1/namespaces",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/deployments/web",
    "/apis/apps/v1/namespaces/default/deployments/web/scale",
    "/apis/apps/v1/namespaces/default/deployments/web/status",
    "/apis/apps/v1/namespaces/default/replicasets",
    "/apis/apps/v1/namespaces/default/statefulsets/db/scale",
    "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases/lock",
    "/apis/apps/v1/namespaces/nowhere/deployments/web",
    "/_sandbox/faults",
    "/_sandbox/objects",
    "/_sandbox/stuck",
    "/_sandbox/faults/1",
]
JUNK_SEGMENTS = ["", "..", "%00", "%ff%fe", "a" * 300, "namespaces", "deployments", "scale", "😀", "?", "%2F", "-"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW"]
CTYPES = [
    "application/json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
    "text/plain",
    "application/json; charset=utf-8",
    "",
    "multipart/form-data; boundary=x",
]
QUERIES = [
    "",
    "?watch=true&resourceVersion=abc",
    "?watch=1&timeoutSeconds=-1",
    "?labelSelector=app%20in%20(a,&fieldSelector=x",
    "?labelSelector=!!a",
    "?limit=-3",
    "?continue=%%%",
    "?dryRun=Bogus",
    "?dryRun=All&fieldManager=",
    "?fieldValidation=Strict",
    "?resourceVersion=99999999999999999999",
]

VALID_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        },
    },
}
WEIRD_VALUES: list[Any] = [None, -1, 2**70, 1.5, True, "", "x" * 1000, [], [1, [2]], {}, {"$patch": "delete"}, "😀"]


def _mutate(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """Replace a random node of a JSON document with a weird value."""
    if isinstance(obj, dict) and obj and depth < 6 and rng.random() < 0.8:
        key = rng.choice(list(obj))
        obj[key] = _mutate(rng, obj[key], depth + 1)
        return obj
    if isinstance(obj, list) and obj and depth < 6 and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        obj[i] = _mutate(rng, obj[i], depth + 1)
        return obj
    return copy.deepcopy(rng.choice(WEIRD_VALUES))


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return b""
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 200))
    if kind == 2:
        return json.dumps(VALID_DEPLOYMENT).encode()[: rng.randrange(1, 120)]
    if kind == 3:
        return json.dumps(_mutate(rng, copy.deepcopy(VALID_DEPLOYMENT))).encode()
    if kind == 4:
        ops = [
            {
                "op": rng.choice(["add", "remove", "replace", "move", "copy", "test", "nope"]),
                "path": rng.choice(
                    ["/spec/replicas", "/metadata/name", "/x/y/z", "", "spec", "/spec/template/spec/containers/9"]
                ),
                "value": rng.choice(WEIRD_VALUES),
                "from": rng.choice(["/spec", "/nope", 5]),
            }
            for _ in range(rng.randrange(1, 4))
        ]
        return json.dumps(ops).encode()
    if kind == 5:
        return json.dumps(rng.choice(WEIRD_VALUES)).encode()
    if kind == 6:
        return ("[" * 5000 + "]" * 5000).encode()
    return json.dumps(
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": rng.choice(WEIRD_VALUES), "$patch": rng.choice(["delete", "replace", "bogus"])}
                        ]
                    }
                }
            }
        }
    ).encode()


def _path(rng: random.Random) -> str:
    base = rng.choice(PATHS)
    if rng.random() < 0.4:
        parts = base.split("/")
        parts.insert(rng.randrange(1, len(parts) + 1), quote(rng.choice(JUNK_SEGMENTS), safe="%"))
        base = "/".join(parts)
    return base + rng.choice(QUERIES)


def test_fuzzed_requests_get_4xx_status_and_server_survives(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web")
    kube_sandbox.create_hpa("default", "web", "web", 1, 4)
    rng = random.Random(SEED)
    u = urlsplit(kube_sandbox.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    seen_4xx = 0
    for i in range(N_REQUESTS):
        method, path, ctype, body = rng.choice(METHODS), _path(rng), rng.choice(CTYPES), _body(rng)
        if "watch" in path and method == "GET":
            path += "&timeoutSeconds=0" if "timeoutSeconds" not in path else ""
        where = f"request {i}: {method} {path} ({ctype!r}, {body[:80]!r})"
        headers = {"Content-Type": ctype} if ctype else {}
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
            continue
        assert resp.status < 500, f"{where} -> {resp.status} {raw[:300]!r}"
        if resp.status >= 400 and method != "HEAD":
            status = json.loads(raw)
            assert status["kind"] == "Status" and status["status"] == "Failure", where
            assert status["code"] == resp.status and status["reason"], where
            seen_4xx += 1
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.close()
    assert seen_4xx > N_REQUESTS // 3
    # raw garbage on the socket, then the server still answers kubectl
    for junk in (
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"PATCH /api HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ):
        with socket.create_connection((u.hostname or "", u.port or 0), timeout=5) as s:
            s.sendall(junk)
            s.recv(4096)
    out = kube_sandbox.kubectl("get", "namespace", "default", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metadata"]["name"] == "default"
    assert len(kube_sandbox.requests()) >= N_REQUESTS // 2
