"""Fixtures for the deployment suite: a deployable checkout and the webhook bridge as a real process (the
PostgreSQL-backed Prefect stack comes from tests/fixtures/prefect_server.py, registered in the root conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployments.webhook import signature_for
from tests.fixtures.prefect_server import VENV_BIN, PrefectServer, free_port, stop_processes, wait_http

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "integrations", "cli", "flows", "tasks", "deployments", "sandbox")
ENTRYPOINT_FILES = ("flows/scale.py", "flows/apply.py", "flows/rollback.py")


@dataclass
class Deployed:
    checkout: Path  # what workers run from (INFRA_ORCHESTRATOR_DIR)
    server: PrefectServer
    deploy_output: str
    pools_output: str


@pytest.fixture(scope="session")
def checkout() -> Iterator[Path]:
    """A stand-in for a worker's checkout: the repository's packages (symlinked) and prefect.yaml, with its own
    ``ops/`` where tests write plan files."""
    missing = [f for f in ENTRYPOINT_FILES if not (REPO_ROOT / f).exists()]
    if missing:
        pytest.fail(f"flow entrypoints missing from the repository: {', '.join(missing)}")
    root = Path(tempfile.mkdtemp(prefix="infra-checkout-"))
    for package in PACKAGES:
        (root / package).symlink_to(REPO_ROOT / package, target_is_directory=True)
    shutil.copy(REPO_ROOT / "prefect.yaml", root / "prefect.yaml")
    (root / "ops").mkdir()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def deployed(prefect_server: PrefectServer, checkout: Path) -> Deployed:
    """Work pools and limits (``deployments/work_pools.py``), then ``prefect --no-prompt deploy --all``."""
    pools = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "deployments.work_pools", "--prefect-yaml", str(checkout / "prefect.yaml")],
        env=prefect_server.env, cwd=checkout, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pools.returncode == 0, pools.stdout + pools.stderr
    deploy = prefect_server.prefect("--no-prompt", "deploy", "--all", cwd=checkout, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-4000:] + deploy.stderr[-4000:]
    return Deployed(checkout, prefect_server, deploy.stdout + deploy.stderr, pools.stdout)


@dataclass
class BridgeProcess:
    url: str
    secret: bytes
    proc: subprocess.Popen[bytes]
    log_path: Path

    def post(self, payload: bytes, delivery: str, event: str = "pull_request",
             signature: str | None = None) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "User-Agent": "GitHub-Hookshot/test",
        }
        sig = signature_for(self.secret, payload) if signature is None else signature
        if sig:
            headers["X-Hub-Signature-256"] = sig
        return httpx.post(self.url + "/", content=payload, headers=headers, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def webhook_bridge(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    """``start(secret=..., routes=None) -> BridgeProcess``: ``infra-webhook --port P`` against the test server."""
    started: list[BridgeProcess] = []

    def start(secret: str = "webhook-secret-for-tests", routes: Path | None = None,
              secret_block: str | None = None, github: dict[str, str] | None = None) -> BridgeProcess:
        """``github``: GitHub settings (the bridge lists a PR's files there to choose its plans). With
        ``secret_block``, the secret is saved as a Prefect Secret block of that name and the bridge reads
        it from there (``GITHUB_WEBHOOK_SECRET_BLOCK``), as production does."""
        port = free_port()
        log_path = tmp_path / f"webhook-{port}.log"
        state = tmp_path / f"deliveries-{port}.sqlite3"
        env: dict[str, Any] = {**prefect_server.env, "INFRA_WEBHOOK_STATE": str(state), **(github or {})}
        if secret_block:
            from prefect.blocks.system import Secret
            from prefect.settings import PREFECT_API_URL, temporary_settings
            from pydantic import SecretStr

            with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
                Secret(value=SecretStr(secret)).save(secret_block, overwrite=True)
            env["GITHUB_WEBHOOK_SECRET_BLOCK"] = secret_block
        else:
            env["GITHUB_WEBHOOK_SECRET"] = secret
        if routes:
            env["INFRA_WEBHOOK_ROUTES"] = str(routes)
        else:
            env["INFRA_REPOSITORIES"] = "acme/infra"
        proc = subprocess.Popen(
            [str(VENV_BIN / "infra-webhook"), "--port", str(port)],
            env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        bridge = BridgeProcess(f"http://127.0.0.1:{port}", secret.encode(), proc, log_path)
        started.append(bridge)
        wait_http(bridge.url + "/healthz", 60, proc, log_path)
        return bridge

    try:
        yield start
    finally:
        stop_processes([bridge.proc for bridge in started], 10)
        for bridge in started:
            assert "webhook-secret-for-tests" not in bridge.log(), "the bridge logged its secret"


def chromium_binary() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None
