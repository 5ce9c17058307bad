"""`infra-demo` end to end, as a newcomer runs it: a subprocess, its own sandboxes and its own Prefect server."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

DEMO = Path(sys.executable).parent / "infra-demo"


@pytest.mark.timeout(420)  # ~90 s on a quiet machine; a fresh Prefect database migrates slowly under load
def test_demo_applies_and_restores_exactly(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "GITHUB_", "GH_", "KUBE", "PRNUM"))}
    env["TMPDIR"] = str(tmp_path)  # the demo's temporary files land here, and must be cleaned up
    started = time.monotonic()
    completed = subprocess.run([str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    elapsed = time.monotonic() - started
    out = completed.stdout

    assert completed.returncode == 0, out + completed.stderr[-3000:]
    assert "LOCAL SANDBOX" in out and "127.0.0.1" in out
    assert "preview: kubectl -n assistant scale deployment/web --replicas=4" in out
    assert "succeeded  kubectl -n assistant scale deployment/web --replicas=2 --current-replicas=4" in out
    rows = {line.split("  ")[0]: re.split(r"\s{2,}", line.strip())[1:] for line in out.splitlines()
            if line.startswith(("web replicas", "api replicas", "api app resources", "HPA web"))}
    assert rows["web replicas"] == ["2", "4", "2"]
    assert rows["api replicas"] == ["2", "2", "2"]
    assert rows["api app resources"] == ["req 100m/128Mi lim 500m/256Mi", "req 250m/256Mi lim 1/512Mi",
                                         "req 100m/128Mi lim 500m/256Mi"]
    assert rows["HPA web"] == ["min 2 max 6", "min 3 max 8", "min 2 max 6"]
    assert "rollback restored everything exactly" in out
    assert "did NOT restore" not in out
    assert out.rstrip().splitlines()[-1].startswith("demo succeeded")
    assert not list(tmp_path.glob("infra-demo-*")), "the demo leaves no temporary files behind"
    assert not list(tmp_path.rglob("plan.record.json"))
    print(f"infra-demo took {elapsed:.1f} s")
