"""A world for time-boxed plans: the execution tests' world (sandbox cluster, GitHub PR, the session's Prefect
server), plus the target's infra-rollback deployment (`infra-rollback/prod`, from the world's checkout) on a
process work pool, and a worker polling it every second, as production runs the scheduled rollback."""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.execution.conftest import World, world  # noqa: F401 - the fixture, shared
from tests.fixtures.prefect_server import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "integrations", "cli", "flows", "tasks", "deployments")
POOL = "infra-expiry-tests"
VENV_BIN = Path(sys.executable).parent
DEPLOY = """
from prefect import flow
flow.from_source(source={root!r}, entrypoint="flows/rollback.py:infra_rollback").deploy(
    name="prod", work_pool_name={pool!r}, parameters={{"execute": False}}, print_next_steps=False)
"""


@dataclass
class RollbackWorker:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def rollback_deployment(world: World) -> World:  # noqa: F811
    """infra-rollback/prod, deployed from the world's checkout (no worker: its runs wait)."""
    for package in PACKAGES:
        (world.root / package).symlink_to(REPO_ROOT / package, target_is_directory=True)
    pool = subprocess.run([str(VENV_BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"],
                          env=world.env, capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0 or "already exists" in pool.stdout + pool.stderr, pool.stdout + pool.stderr
    deploy = subprocess.run([sys.executable, "-c", DEPLOY.format(root=str(world.root), pool=POOL)],
                            env=world.env, cwd=world.root, capture_output=True, text=True, timeout=120)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    return world


@pytest.fixture
def rollback_worker(rollback_deployment: World, tmp_path: Path) -> Iterator[RollbackWorker]:
    """A process worker for the deployment's pool, in the world's checkout, polling every second."""
    log_path = tmp_path / "worker.log"
    proc = subprocess.Popen([str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
                            env={**rollback_deployment.env, "PREFECT_WORKER_QUERY_SECONDS": "1",
                                 "PREFECT_WORKER_PREFETCH_SECONDS": "5"},
                            cwd=rollback_deployment.root, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield RollbackWorker(proc, log_path)
    finally:
        stop_process(proc, 20)
