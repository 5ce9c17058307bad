"""What a worker needs, checked without a container engine or a cluster: prefect.yaml's pull step (run through
Prefect's own step runner) fails naming INFRA_ORCHESTRATOR_DIR; the worker image installs what that step and the
flows use; the Kubernetes work pool's base job template has the shape of prefect-kubernetes' default."""

import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.worker import CHECKOUT_MARKERS, CHECKOUT_VARIABLE, CheckoutMissing

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deployments" / "worker.Dockerfile"
JOB_TEMPLATE = REPO / "deployments" / "k8s-job-template.json"
PULL_STEPS = yaml.safe_load((REPO / "prefect.yaml").read_text())["pull"]


@pytest.fixture
def cwd_restored() -> Iterator[None]:
    before = os.getcwd()
    yield
    os.chdir(before)


def run_pull_steps(monkeypatch: pytest.MonkeyPatch, checkout: str | None) -> dict[str, Any]:
    """prefect.yaml's pull steps as Prefect's step runner runs them (`run_step`: the step function imported by
    name, its inputs templated from the environment), minus the block and variable lookups that need a server."""
    from prefect.utilities.importtools import import_object
    from prefect.utilities.templating import apply_values

    if checkout is None:
        monkeypatch.delenv(CHECKOUT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(CHECKOUT_VARIABLE, checkout)
    outputs: dict[str, Any] = {}
    for step in PULL_STEPS:
        ((name, inputs),) = step.items()
        outputs.update(import_object(name)(**apply_values(inputs, dict(os.environ))))
    return outputs


@pytest.mark.parametrize(("checkout", "says"), [
    (None, "INFRA_ORCHESTRATOR_DIR is not set on this worker: set INFRA_ORCHESTRATOR_DIR in the worker's environment"),
    ("/nonexistent/checkout", "INFRA_ORCHESTRATOR_DIR=/nonexistent/checkout is not a directory on this worker"),
    ("{tmp}", "is not a checkout of infra-orchestrator (no prefect.yaml, flows/apply.py"),
])
def test_the_pull_step_fails_naming_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             cwd_restored: None, checkout: str | None,
                                                             says: str) -> None:
    with pytest.raises(CheckoutMissing) as failed:
        run_pull_steps(monkeypatch, checkout.format(tmp=tmp_path) if checkout else None)

    assert says in str(failed.value)
    assert "e.g. INFRA_ORCHESTRATOR_DIR=/srv/infra-orchestrator" in str(failed.value)


def test_the_pull_step_enters_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cwd_restored: None) -> None:
    monkeypatch.chdir(tmp_path)

    outputs = run_pull_steps(monkeypatch, str(REPO))

    assert Path.cwd() == REPO and outputs["directory"] == str(REPO)
    assert all((REPO / marker).is_file() for marker in CHECKOUT_MARKERS)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                           if not line.lstrip().startswith("#")))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_worker_image_installs_the_project_kubectl_and_the_checkout() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    known = {"FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "LABEL", "ENTRYPOINT", "CMD"}
    assert set(keywords) <= known and keywords[0] in ("FROM", "ARG"), keywords
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    base = next(rest for keyword, rest in instructions if keyword == "FROM")
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert re.match(r"python:3\.(1[1-9])", base) and python == ">=3.11", base

    assert "kubectl" in runs and "sha256sum --check" in runs, "kubectl, verified against its release checksum"
    assert re.search(r"pip install [^&]*--no-cache-dir[^&]* \.(\s|$)", runs), "the project itself (pyproject.toml)"
    copied = [shlex.split(rest)[:-1] for keyword, rest in instructions if keyword == "COPY"]
    sources = {source.rstrip("/") for sources in copied for source in sources if not source.startswith("--")}
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = {name.rstrip("*") for name in packages["include"]} | {"pyproject.toml", "README.md", "prefect.yaml"}
    assert needed <= sources, f"the image lacks {needed - sources}"
    assert {"ops"} <= sources, "the plans and desired-state files the flows read"
    assert f"{CHECKOUT_VARIABLE}=" in env, "the pull step's checkout is the image's copy"
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user and user[-1] not in ("root", "0"), "the flows do not run as root"


def placeholders(value: Any) -> set[str]:
    text = json.dumps(value)
    return set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", text))


def test_the_kubernetes_job_template_has_prefect_kubernetes_default_shape() -> None:
    template = json.loads(JOB_TEMPLATE.read_text())
    configuration, variables = template["job_configuration"], template["variables"]

    # the keys KubernetesWorkerJobConfiguration reads (prefect-kubernetes 0.8)
    assert {"command", "env", "labels", "name", "namespace", "job_manifest", "cluster_config",
            "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output"} <= set(configuration)
    assert variables["type"] == "object"
    declared = set(variables["properties"])
    assert placeholders(configuration) - {"command", "env", "labels", "name"} <= declared, \
        f"undeclared variables: {placeholders(configuration) - declared}"
    manifest = configuration["job_manifest"]
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    pod = manifest["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "prefect-job"]
    assert container["args"] == "{{ command }}" and container["image"] == "{{ image }}"
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "{{ service_account_name }}"
    assert variables["properties"]["service_account_name"]["default"] == "infra-orchestrator", "deployments/rbac.yaml"
    assert "worker" in variables["properties"]["image"]["default"], "deployments/worker.Dockerfile"
    assert pod["securityContext"]["runAsNonRoot"] is True
