"""The bridge over HTTP: a Starlette app on uvicorn, every connection bounded in time, size and number."""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deployments.webhook.bridge import Bridge
from deployments.webhook.uvicorn_adapter import head_deadline_protocol

log = logging.getLogger("infra.webhook")

DEFAULT_MAX_BODY = 5 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 100


@dataclass(frozen=True)
class Limits:
    read_timeout_s: float = DEFAULT_READ_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_connections: int = DEFAULT_MAX_CONNECTIONS


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limits: Limits) -> bytes:
    """The whole body within the read timeout and the size limit (``TimeoutError`` / ``BodyTooLarge``)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not re.fullmatch(r"[0-9]{1,12}", declared) or int(declared) > limits.max_body_bytes):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    with anyio.fail_after(limits.read_timeout_s):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def _closing(status: int, reason: str) -> JSONResponse:
    """An answer sent before the body was read whole: the connection cannot be reused, so it is closed."""
    return JSONResponse({"status": "bad request", "reason": reason}, status, headers={"Connection": "close"})


def create_app(bridge: Bridge, limits: Limits) -> Starlette:
    async def webhook(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, limits)
        except BodyTooLarge:
            log.warning("body over %d bytes -> 413", limits.max_body_bytes)
            return _closing(413, f"body over {limits.max_body_bytes} bytes")
        except TimeoutError:
            log.warning("body not received within %.1f s -> 408", limits.read_timeout_s)
            return _closing(408, f"body not received within {limits.read_timeout_s:g} s")
        headers = {key.lower(): value for key, value in request.headers.items()}
        outcome = await anyio.to_thread.run_sync(bridge.handle, headers, body)
        log.log(
            logging.WARNING if outcome.status == 403 else logging.INFO,
            "delivery=%s event=%s -> %d %s",
            headers.get("x-github-delivery", "-")[:64],
            headers.get("x-github-event", "-")[:40],
            outcome.status,
            outcome.body.get("reason", ""),
        )
        return JSONResponse(outcome.body, outcome.status)

    async def health(request: Request) -> JSONResponse:
        replays_remembered = await anyio.to_thread.run_sync(len, bridge.replays)
        return JSONResponse(
            {
                "ok": True,
                "uptime_s": round(time.time() - bridge.started, 1),
                "replays_remembered": replays_remembered,
                "repositories": bridge.routes.served(),
                "counts": dict(bridge.counts),
            }
        )

    return Starlette(
        routes=[
            Route(path, webhook, methods=["POST"]) for path in ("/", "/webhook", "/github")
        ] + [Route(path, health, methods=["GET"]) for path in ("/healthz", "/health")]
    )  # fmt: skip


def server_config(app: Starlette, limits: Limits, host: str = "127.0.0.1", port: int = 0) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=head_deadline_protocol(limits.read_timeout_s),
        ws="none",
        lifespan="off",
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=max(1, math.ceil(limits.read_timeout_s)),
        timeout_graceful_shutdown=5,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
