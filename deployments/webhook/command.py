"""``infra-webhook``: the command line, the secret and the configuration, then the server until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from core.conventions import Env
from deployments.webhook.bridge import Bridge, github_files, warm_up_prefect
from deployments.webhook.routes import ConfigError, Routes
from deployments.webhook.server import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    Limits,
    create_app,
    server_config,
)
from deployments.webhook.signature import ReplayLog
from integrations.command_help import CommandParser, Usage, documented

log = logging.getLogger("infra.webhook")

GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024
DEFAULT_STATE = Path.home() / ".infra-orchestrator" / "webhook-deliveries.sqlite3"


def load_secret(env: Mapping[str, str] = os.environ) -> bytes:
    """The webhook secret from ``GITHUB_WEBHOOK_SECRET`` or the Prefect Secret block ``GITHUB_WEBHOOK_SECRET_BLOCK``."""
    value = env.get("GITHUB_WEBHOOK_SECRET", "")
    if not value and env.get("GITHUB_WEBHOOK_SECRET_BLOCK"):
        from prefect.blocks.system import Secret

        block: Any = Secret.load(env["GITHUB_WEBHOOK_SECRET_BLOCK"], _sync=True)  # type: ignore[call-arg]
        value = str(block.get())
    if not value:
        raise ConfigError("environment", "GITHUB_WEBHOOK_SECRET", "set it or GITHUB_WEBHOOK_SECRET_BLOCK")
    return value.encode()


def _number(flag: str, text: str, low: float, high: float, integer: bool) -> float:
    """``text`` as a plain ASCII decimal within [low, high]."""
    pattern = r"[0-9]{1,9}" if integer else r"[0-9]{1,9}(\.[0-9]{1,6})?"
    if not re.fullmatch(pattern, text.strip()) or not low <= float(text) <= high:
        bounds = f"an integer from {low:.0f} to {high:.0f}" if integer else f"a number from {low:g} to {high:g}"
        raise ConfigError("command line", flag, f"must be {bounds}, not {text!r}")
    return float(text)


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        read_timeout_s=_number("--read-timeout", args.read_timeout, 0.1, 300, integer=False),
        max_body_bytes=int(_number("--max-body-bytes", args.max_body_bytes, 1024, GITHUB_MAX_PAYLOAD, integer=True)),
        max_connections=int(_number("--max-connections", args.max_connections, 2, 100_000, integer=True)),
    )


USAGE = Usage(
    examples=("infra-webhook --host 0.0.0.0 --port 8787 --state /var/lib/infra-webhook/deliveries.sqlite3",
              "infra-webhook --routes routes.yaml    # targets per repository, plan path template"),
    environment=(("PREFECT_API_URL", "the Prefect server the events go to (required)"),
                 ("GITHUB_WEBHOOK_SECRET", "the webhook's secret"),
                 ("GITHUB_WEBHOOK_SECRET_BLOCK", "a Prefect Secret block holding it, instead"),
                 ("GH_OWNER, GH_REPO", "the repository served (or INFRA_REPOSITORIES=owner/a,owner/b, or --routes)"),
                 ("INFRA_WEBHOOK_HOST, _PORT, _STATE, _ROUTES", "defaults of --host, --port, --state, --routes"),
                 ("INFRA_WEBHOOK_READ_TIMEOUT, _MAX_BODY_BYTES, _MAX_CONNECTIONS", "defaults of the limit flags"),
                 (Env.WEBHOOK_LOG_LEVEL, "log level (default INFO)")),
    exit_codes=(("0", "stopped by SIGTERM or SIGINT"),
                ("2", "bad configuration: a flag, the routes file, the secret, no repository or no PREFECT_API_URL"),
                ("3", "could not listen on --host/--port (uvicorn's startup failure)")),
)


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    parser = CommandParser(prog="infra-webhook", description="GitHub webhook -> Prefect event bridge.")
    documented(parser, USAGE)
    parser.add_argument("--host", default=env.get(Env.WEBHOOK_HOST, "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", default=env.get(Env.WEBHOOK_PORT, "8787"), help="TCP port (default 8787)")
    parser.add_argument(
        "--state",
        default=env.get(Env.WEBHOOK_STATE, str(DEFAULT_STATE)),
        help="SQLite file remembering handled bodies (':memory:' for none)",
    )
    parser.add_argument(
        "--routes", default=env.get(Env.WEBHOOK_ROUTES) or None, help="optional routes YAML (see module doc)"
    )
    parser.add_argument(
        "--read-timeout",
        default=env.get(Env.WEBHOOK_READ_TIMEOUT, str(DEFAULT_READ_TIMEOUT)),
        help="seconds allowed for a request's head, again for its body, and for an idle connection",
    )
    parser.add_argument("--max-body-bytes", default=env.get(Env.WEBHOOK_MAX_BODY_BYTES, str(DEFAULT_MAX_BODY)),
                        help="largest request body accepted, in bytes (larger ones get 413)")
    parser.add_argument(
        "--max-connections",
        default=env.get(Env.WEBHOOK_MAX_CONNECTIONS, str(DEFAULT_MAX_CONNECTIONS)),
        help="open connections beyond which requests get 503",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=env.get(Env.WEBHOOK_LOG_LEVEL, "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        port = int(_number("--port", args.port, 0, 65535, integer=True))
        limits = limits_from(args)
        routes = Routes.from_config(args.routes, env)
        secret = load_secret(env)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not env.get("PREFECT_API_URL"):
        print("error: environment: PREFECT_API_URL: is required (the bridge emits events to a Prefect server)",
              file=sys.stderr)  # fmt: skip
        return 2
    warm_up_prefect()
    can_list_files = bool(os.environ.get("GITHUB_TOKEN") or os.environ.get("GITHUB_TOKEN_BLOCK"))
    bridge = Bridge(secret=secret, routes=routes, replays=ReplayLog(args.state),
                    files_of=github_files if can_list_files else None)
    server = uvicorn.Server(server_config(create_app(bridge, limits), limits, args.host, port))
    log.info(
        "infra-webhook listening on http://%s:%d for %s (read timeout %g s, body limit %d bytes, %d connections)",
        args.host, port, ", ".join(routes.served()), limits.read_timeout_s, limits.max_body_bytes,
        limits.max_connections,
    )  # fmt: skip
    try:
        server.run()  # uvicorn stops gracefully on SIGTERM / SIGINT
    finally:
        bridge.replays.close()
    return 0
