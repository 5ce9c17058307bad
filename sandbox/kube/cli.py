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

from .server import SandboxServer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infra-sandbox", description="Sandbox Kubernetes API server for kubectl.")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig file to write for this server")
    p.add_argument("--context", default="sandbox", help="context/cluster/user name in the kubeconfig")
    p.add_argument("--namespace", default="default", help="the context's namespace")
    p.add_argument("--seed-file", action="append", default=[], help="YAML/JSON objects to create at start")
    p.add_argument("--rollout-delay", type=float, default=0.05, help="seconds until a rollout completes")
    p.add_argument("--hpa-delay", type=float, default=0.05, help="seconds until an HPA reacts")
    p.add_argument("--fault-seed", type=int, default=0, help="seed for fraction-based fault rules")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        server = SandboxServer(args.host, args.port, args.rollout_delay, args.hpa_delay, args.fault_seed)
    except OSError as e:
        print(f"infra-sandbox: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
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
