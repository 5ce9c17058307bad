"""`infra-apply | head -1`: a reader that leaves before the output is written gets no traceback on stderr."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_closed_pipe_is_not_a_traceback() -> None:
    for flow in ("apply", "rollback"):
        command = f"{Path(sys.executable).parent / f'infra-{flow}'} | true"  # the reader is gone at once
        done = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True,
                              timeout=60, env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/dev/null"})
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
