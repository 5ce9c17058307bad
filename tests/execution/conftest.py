"""A small world for execution tests: a sandbox cluster, a GitHub PR carrying the plan, a Prefect server.

Everything is real except the cluster and GitHub themselves, which cannot exist here: real kubectl talks to
the sandbox API server, PyGithub to the GitHub test server (responses schema-checked at teardown), and the
flows run on a real (temporary) Prefect server.
"""

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.github import GitHubServer
from tests.fixtures.kube import KubeSandbox

REPO = "acme/infra"
PLAN_PATH = "ops/plans/infra-scale/prod/plan.yaml"
NAMESPACE = "shop"
PLAN = f"""\
namespace: {NAMESPACE}
target: prod
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
  - {{type: update_resources, name: api, container: app, requests: {{cpu: 300m}}, limits: {{cpu: 600m}}}}
  - {{type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 70}}
"""
APP = {"name": "app", "image": "shop/app:1.0",
       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m"}}}


@dataclass
class World:
    root: Path
    kube: KubeSandbox
    github: GitHubServer
    env: dict[str, str]
    pr: int = 0
    plan_text: str = PLAN
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def plan(self) -> Path:
        return self.root / PLAN_PATH

    def write_plan(self, text: str) -> None:
        """Put `text` both in the local checkout and at the PR head, as a reviewed change would be."""
        self.plan_text = text
        self.plan.write_text(text)
        self.github.change_file(REPO, self.pr, PLAN_PATH, text)

    def label(self, label: str, actor: str = "alice") -> None:
        self.github.add_label(REPO, self.pr, label, actor)

    def cli(self, flow: str, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / f"infra-{flow}"), f"--plan={PLAN_PATH}", *args]
        return subprocess.run(command, cwd=self.root, env={**self.env, **env}, capture_output=True, text=True,
                              timeout=timeout)

    def deployment(self, name: str) -> dict[str, Any]:
        found = self.kube.get("Deployment", NAMESPACE, name)
        assert found is not None, f"deployment {name} is gone"
        return found

    def replicas(self, name: str) -> int:
        return int(self.deployment(name)["spec"]["replicas"])

    def resources(self, name: str) -> dict[str, Any]:
        return dict(self.deployment(name)["spec"]["template"]["spec"]["containers"][0].get("resources", {}))

    def hpa(self, name: str) -> dict[str, Any] | None:
        return self.kube.get("HorizontalPodAutoscaler", NAMESPACE, name)


@pytest.fixture
def world(tmp_path: Path, kube_sandbox: KubeSandbox, github_server: GitHubServer,
          prefect_env: dict[str, str]) -> World:
    kube_sandbox.create_namespace(NAMESPACE)
    kube_sandbox.create_deployment(NAMESPACE, "web", replicas=2, containers=[dict(APP, name="app")])
    kube_sandbox.create_deployment(NAMESPACE, "api", replicas=1, containers=[dict(APP, name="app")])
    root = tmp_path / "checkout"
    (root / PLAN_PATH).parent.mkdir(parents=True)
    (root / PLAN_PATH).write_text(PLAN)
    github_server.create_repo(REPO, files={"README.md": "# infra\n"})
    for login, role in {"alice": "admin", "walt": "write", "tess": "triage", "rita": "read"}.items():
        github_server.add_collaborator(REPO, login, role)
    pr = github_server.open_pr(REPO, head="infra-scale/prod", author="alice", title="infra-scale: prod",
                               files={PLAN_PATH: PLAN})
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "GH_", "PRNUM"))}
    env.update(kube_sandbox.env, **github_server.env("alice", REPO), **prefect_env)
    return World(root=root, kube=kube_sandbox, github=github_server, env=env, pr=pr)
