"""The desired-state model: files and the seed's --workload flags; every error names the file and field."""

from pathlib import Path

import pytest

from core.desired import desired_from, from_flags, load_desired, parse_workload_flag
from core.errors import InputError
from core.plan import HpaBounds, Workload

REPO = Path(__file__).resolve().parents[2]


def test_example_file_loads() -> None:
    state = load_desired(REPO / "ops/desired/staging.yaml")
    assert (state.target, state.namespace) == ("staging", "assistant-staging")
    web, api = state.workloads
    assert web.workload == Workload("Deployment", "web") and web.replicas == 2
    assert web.containers[0].name == "app" and web.containers[0].limits == {"cpu": "1", "memory": "512Mi"}
    assert api.hpa == HpaBounds(2, 6, 70) and api.replicas is None


def test_seed_flags() -> None:
    state = from_flags("staging", "assistant-staging", ["Deployment:web:2", "StatefulSet:db:3", "api:1"])
    assert state.source == "arguments"
    assert [(w.workload.ref, w.replicas) for w in state.workloads] == [
        ("deployment/web", 2),
        ("statefulset/db", 3),
        ("deployment/api", 1),
    ]


@pytest.mark.parametrize(
    ("flag", "field", "message"),
    [
        ("Deployment:web", "--workload[0]", "KIND:NAME:REPLICAS"),
        ("Job:web:2", "--workload[0]", "kind 'Job' is not supported"),
        ("Deployment:Web:2", "--workload[0]", "not a valid name"),
        ("Deployment:web:-1", "--workload[0]", "whole number"),
        ("Deployment:web:two", "--workload[0]", "whole number"),
    ],
)
def test_bad_workload_flags(flag: str, field: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_workload_flag(flag, field)
    assert caught.value.source == "arguments" and caught.value.field == field
    assert message in caught.value.message


def test_flags_need_target_namespace_and_workloads() -> None:
    with pytest.raises(InputError, match="--target: is required"):
        from_flags(None, "ns", ["web:1"])
    with pytest.raises(InputError, match="--namespace: 'Bad_ns' is not a valid name"):
        from_flags("t", "Bad_ns", ["web:1"])
    with pytest.raises(InputError, match="--workload: give at least one"):
        from_flags("t", "ns", [])
    with pytest.raises(InputError, match=r"--workload\[1\].name: deployment/web is already listed"):
        from_flags("t", "ns", ["web:1", "Deployment:web:2"])


def test_file_and_flags_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("target: t\nnamespace: ns\nworkloads: [{name: web, replicas: 1}]\n")
    with pytest.raises(InputError, match="not both"):
        desired_from(str(path), None, None, ["web:2"])
    with pytest.raises(InputError, match="--namespace: 'other' does not match 'ns'"):
        desired_from(str(path), None, "other", None)
    assert desired_from(str(path), "t", "ns", None).target == "t"


BAD_FILES = [
    ("target: t\nworkloads: [{name: web, replicas: 1}]\n", "namespace", "is required"),
    ("target: t\nnamespace: ns\nworkloads: []\n", "workloads", "is empty"),
    ("target: t\nnamespace: ns\nworkloads: [{name: web, replicas: 1}]\nextra: 1\n", "extra", "unknown field"),
    ("target: t\nnamespace: ns\nworkloads: [{name: web, replica: 1}]\n", "workloads[0].replica", "unknown field"),
    ("target: t\nnamespace: ns\nworkloads: [{name: Web_1, replicas: 1}]\n", "workloads[0].name", "not a valid"),
    ("target: t\nnamespace: ns\nworkloads: [{name: web, replicas: -2}]\n", "workloads[0].replicas", "out of range"),
    ("target: t\nnamespace: ns\nworkloads: [{name: web, replicas: '2'}]\n", "workloads[0].replicas", "whole number"),
    (
        "target: t\nnamespace: ns\nworkloads: [{kind: Job, name: web, replicas: 1}]\n",
        "workloads[0].kind",
        "not supported",
    ),
    ("target: t\nnamespace: ns\nworkloads: [{name: web}]\n", "workloads[0]", "says nothing to manage"),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, replicas: 1, hpa: {maxReplicas: 3}}]\n",
        "workloads[0].replicas",
        "not both",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, hpa: {minReplicas: 5, maxReplicas: 3}}]\n",
        "workloads[0].hpa.minReplicas",
        "more than maxReplicas",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, hpa: {minReplicas: 1}}]\n",
        "workloads[0].hpa.maxReplicas",
        "is required",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, hpa: {maxReplicas: 3, cpu: 50}}]\n",
        "workloads[0].hpa.cpu",
        "unknown field",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, containers: {app: {requests: {cpu: lots}}}}]\n",
        "workloads[0].containers.app.requests.cpu",
        "not a Kubernetes quantity",
    ),
    (
        "target: t\nnamespace: ns\n"
        "workloads: [{name: web, containers: {app: {requests: {cpu: 2}, limits: {cpu: 1}}}}]\n",
        "workloads[0].containers.app.requests.cpu",
        "more than the limit",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, containers: {App: {requests: {cpu: 1}}}}]\n",
        "workloads[0].containers.App",
        "not a valid name",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, containers: {app: {}}}]\n",
        "workloads[0].containers.app",
        "needs requests or limits",
    ),
    (
        "target: t\nnamespace: ns\nworkloads: [{name: web, containers: {app: {requests: {gpu!: 1}}}}]\n",
        "workloads[0].containers.app.requests.gpu!",
        "not a resource name",
    ),
    (
        "target: t\nnamespace: ns\nworkloads:\n  - {name: web, replicas: 1}\n  - {name: web, replicas: 2}\n",
        "workloads[1].name",
        "already listed at workloads[0]",
    ),
    (
        "target: t\nnamespace: ns\ncontext: --kubeconfig=/x\nworkloads: [{name: web, replicas: 1}]\n",
        "context",
        "not a kube context",
    ),
    ("target: t\nnamespace: ns\nworkloads: &a [{name: web, replicas: 1}]\nx: *a\n", "line 3", "aliases"),
    ("- just a list\n", "document", "must be a mapping"),
    ("", "file", "is empty"),
]


@pytest.mark.parametrize(("text", "field", "message"), BAD_FILES)
def test_bad_files_name_file_and_field(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = tmp_path / "desired.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_desired(path)
    assert caught.value.source == str(path)
    assert caught.value.field == field, caught.value
    assert message in caught.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file: not found"):
        load_desired(tmp_path / "nope.yaml")
