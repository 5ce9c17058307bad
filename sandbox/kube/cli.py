"""``infra-sandbox``: run a sandbox API server until SIGTERM/SIGINT.

Writes a kubeconfig for it, optionally seeds objects, then prints ``ready`` (a line on stdout, flushed) once
it accepts connections, so scripts can wait for that line instead of polling.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from integrations.command_help import CommandParser, Usage, documented

from .controllers import DEFAULT_BROKEN_IMAGE
from .server import SandboxServer

USAGE = Usage(
    examples=("infra-sandbox --kubeconfig /tmp/sandbox.kubeconfig    # prints `ready <url>`, serves until SIGTERM",
              "infra-sandbox --kubeconfig kc --namespace assistant --seed-file objects.yaml --token t=alice"),
    environment=(),
    exit_codes=(("0", "stopped by SIGTERM or SIGINT"),
                ("1", "could not listen, or a --token or --seed-file was refused"),
                ("2", "bad flags")),
)


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="infra-sandbox", description="Sandbox Kubernetes API server for kubectl.")
    documented(p, USAGE)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig file to write for this server")
    p.add_argument("--context", default="sandbox", help="context/cluster/user name in the kubeconfig")
    p.add_argument("--namespace", default="default", help="the context's namespace")
    p.add_argument("--seed-file", action="append", default=[], help="YAML/JSON objects to create at start")
    p.add_argument("--rollout-delay", type=float, default=0.05, help="seconds until a new pod becomes ready")
    p.add_argument("--hpa-delay", type=float, default=0.05, help="seconds until an HPA reacts")
    p.add_argument("--hpa-sync-period", type=float, default=15.0, help="HPA resync period while a window holds")
    p.add_argument(
        "--hpa-downscale-stabilization", type=float, default=300.0, help="default scale-down window in seconds"
    )
    p.add_argument("--broken-image", default=DEFAULT_BROKEN_IMAGE, help="regex of images whose pods never get ready")
    p.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=USER[:GROUP,...]",
        help="a bearer token for a user authorised by RBAC objects (repeatable)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every API request, in ms")
    p.add_argument("--fault-seed", type=int, default=0, help="seed for fraction-based fault rules")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        server = SandboxServer(
            args.host,
            args.port,
            args.rollout_delay,
            args.hpa_delay,
            args.fault_seed,
            broken_image=args.broken_image,
            hpa_sync_period=args.hpa_sync_period,
            hpa_downscale_stabilization=args.hpa_downscale_stabilization,
            latency_s=args.latency_ms / 1000,
        )
    except OSError as e:
        print(f"infra-sandbox: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for spec in args.token:
            token, _, who = spec.partition("=")
            user, _, groups = who.partition(":")
            if not token or not user:
                raise ValueError(f"--token {spec!r}: expected TOKEN=USER[:GROUP,...]")
            server.add_token(token, user, [g for g in groups.split(",") if g])
        for path in args.seed_file:
            server.seed_file(path)
        server.create_namespace(args.namespace)
        server.write_kubeconfig(args.kubeconfig, args.context, args.namespace)
    except Exception as e:
        print(f"infra-sandbox: {e}", file=sys.stderr)
        server.stop()
        return 1
    server.start()
    print(f"ready {server.url}", flush=True)
    try:
        while not stop.wait(0.1):
            pass
    finally:
        server.stop()
    return 0
