"""The shipped JSON Schema is the one the plan's declarations generate, and agrees with the loader on good and
bad plans (editors see what `load_plan` enforces). Documents are read with core.safeyaml, as the loader reads
them (so `1:30` is the string it looks like, not 90)."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from core.errors import InputError
from core.plan import parse_plan, schema_text
from core.safeyaml import load_documents

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "core/schema/plan.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())
EXAMPLE = REPO / "ops/plans/infra-scale/prod/plan.yaml"

GOOD = [
    "namespace: ns\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, kind: StatefulSet, name: db, replicas: 0}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: api, resources: {limits: {memory: 1Gi}}}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, maxReplicas: 3, reason: peak}\n",
    "namespace: ns\nactions: [{type: scale_workload, name: web, replicas: 1}]\n"
    "rollbackHints: [kubectl rollout undo deployment/web -n ns]\n",
    "namespace: ns\ntarget: prod-2\ncontext: arn:aws:eks:eu-west-1:1:cluster/c\nversion: 3\n",
    "namespace: ns\nactions:\n"
    "  - {type: update_resources, name: w, container: app, requests: {cpu: 1, nvidia.com/gpu: 2}}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: w, limits: {memory: 1e3, cpu: '0.000000001'}}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: 10000, current: {any: thing}}\n",
]
BAD = [
    "actions: []\n",
    "namespace: Prod_NS\n",
    "namespace: ns\nextra: 1\n",
    "namespace: ns\nactions:\n  - {type: delete_everything, name: web}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: -1}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: web, requests: {cpu: lots}}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web}\n",
    "namespace: ns\nrollbackHints: ['kubectl rollout undo deployment/web; id']\n",
    "namespace: ns\nrollbackHints: [/etc/passwd]\n",
    'namespace: "ns\\n"\n',
    "namespace: ns\ntarget: ../../etc\n",
    "namespace: ns\ntarget: '**approved**'\n",
    "namespace: ns\ntarget: 'prod\\n'\n",
    "namespace: ns\ncontext: -prod\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: 1:30}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: 017}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: true}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: " + "9" * 5000 + "}\n",
    'namespace: ns\nactions:\n  - {type: scale_workload, name: "web\\n", replicas: 1}\n',
    'namespace: ns\nactions:\n  - {type: update_resources, name: web, container: "app\\n", limits: {cpu: 1}}\n',
    'namespace: ns\nactions:\n  - {type: update_resources, name: web, requests: {cpu: "250m\\n"}}\n',
    "namespace: ns\nactions:\n  - {type: update_resources, name: web, requests: {cpu: 1e999999999}}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: web, requests: {cpu: " + "9" * 5000 + "}}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: web, requests: {cpu: 0.0000000001}}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: web, requests: {'cpu\\n': 1}}\n",
    "namespace: ns\nactions:\n"
    "  - {type: update_resources, name: web, resources: {limits: {cpu: 1}}, limits: {cpu: 1}}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, manifest: /etc/hpa.yaml}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, manifest: hpa.yaml, maxReplicas: 3}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, minReplicas: 2}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, maxReplicas: 3, targetCPUUtilizationPercentage: 0}\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: 1, reason: 5}\n",
    "namespace: ns\nrollbackHints: ['kubectl scale deployment/web --replicas=1\\n; id']\n",
]


def read(text: str) -> object:
    return load_documents(text, "plan.yaml")[0]


def schema_errors(document: object) -> list[str]:
    return [error.message for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)]


def test_the_committed_schema_is_the_generated_one() -> None:
    """CI fails when core/schema/plan.schema.json was edited by hand or not regenerated after a declaration changed."""
    assert SCHEMA_FILE.read_text() == schema_text(), "run: .venv/bin/python scripts/generate_schema.py"


def test_the_generator_script_checks_and_writes(tmp_path: Path) -> None:
    script = REPO / "scripts/generate_schema.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_example_plan_passes_the_schema() -> None:
    assert schema_errors(read(EXAMPLE.read_text())) == []


@pytest.mark.parametrize("text", GOOD)
def test_schema_and_loader_accept(text: str, tmp_path: Path) -> None:
    document = read(text)
    assert schema_errors(document) == []
    parse_plan(document, tmp_path / "plan.yaml")


@pytest.mark.parametrize("text", BAD)
def test_schema_and_loader_reject(text: str, tmp_path: Path) -> None:
    document = read(text)
    assert schema_errors(document) != []
    with pytest.raises(InputError):
        parse_plan(document, tmp_path / "plan.yaml")
