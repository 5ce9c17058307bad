"""infra-scale test wiring: a sandbox namespace with workloads, a GitHub repo, and kubectl pointed at them."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.github import GitHubServer
from tests.fixtures.kube import KubeSandbox

NAMESPACE = "assistant-staging"
REPO = "acme/infra"


@pytest.fixture
def cluster(kube_sandbox: KubeSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KubeSandbox:
    """web (2 replicas, app container with resources), api (HPA-managed, 2..6), in NAMESPACE; cwd = tmp_path."""
    kube_sandbox.create_deployment(
        NAMESPACE,
        "web",
        replicas=2,
        containers=[
            {
                "name": "app",
                "image": "nginx:1.25",
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
            }
        ],
    )
    kube_sandbox.create_deployment(NAMESPACE, "api", replicas=2)
    kube_sandbox.create_hpa(NAMESPACE, "api", "api", 2, 6)
    for key, value in kube_sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KUBECTL", raising=False)
    monkeypatch.chdir(tmp_path)
    return kube_sandbox


@pytest.fixture
def github(github_server: GitHubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubServer]:
    """acme/infra with a main branch; alice (admin) is the token in the environment."""
    github_server.add_user("alice")
    github_server.create_repo(REPO, files={"README.md": "# infra\n"})
    github_server.add_collaborator(REPO, "alice", "admin")
    for key, value in github_server.env("alice", REPO).items():
        monkeypatch.setenv(key, value)
    yield github_server  # every response is checked against GitHub's schema when the fixture tears down


@pytest.fixture
def prefect(prefect_api: str) -> str:
    """The shared session Prefect server (tests/fixtures/prefect.py)."""
    return prefect_api


def write_desired(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)
