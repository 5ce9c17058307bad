"""``infra-github-sandbox --port P [--seed demo]``: run the GitHub test server until interrupted."""

from __future__ import annotations

import json
import signal
import sys
import threading

from integrations.command_help import CommandParser, Usage, documented

from .server import GitHubSandbox
from .state import seed_demo

USAGE = Usage(
    examples=("infra-github-sandbox --port 8900 --seed demo    # prints GITHUB_API_URL=..., the seed, then `ready`",),
    environment=(),
    exit_codes=(("0", "stopped by SIGTERM or SIGINT"), ("2", "bad flags")),
)


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="infra-github-sandbox", description=__doc__)
    documented(parser, USAGE)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", choices=["demo", "none"], default="none",
                        help="demo: acme/infra with users alice (admin), bob (triage), carol and PR #1 carrying a "
                             "valid plan; none (default): empty")
    args = parser.parse_args(argv)
    sandbox = GitHubSandbox(args.host, args.port)
    info = seed_demo(sandbox) if args.seed == "demo" else {}
    sandbox.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"GITHUB_API_URL={sandbox.url}", flush=True)
    if info:
        print(f"seed: {json.dumps(info, sort_keys=True)}", flush=True)
    print("ready", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
