"""The shipped JSON Schema agrees with the loader on good and bad plans (editors see what `load_plan` enforces)."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from core.errors import InputError
from core.plan import parse_plan

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "core/schema/plan.schema.json").read_text())
EXAMPLE = Path(__file__).resolve().parents[2] / "ops/plans/infra-scale/prod/plan.yaml"

GOOD = [
    "namespace: ns\n",
    "namespace: ns\nactions:\n  - {type: scale_workload, kind: StatefulSet, name: db, replicas: 0}\n",
    "namespace: ns\nactions:\n  - {type: update_resources, name: api, resources: {limits: {memory: 1Gi}}}\n",
    "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, maxReplicas: 3, reason: peak}\n",
    "namespace: ns\nrollbackHints: [kubectl rollout undo deployment/web -n ns]\n",
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
]


def schema_errors(document: object) -> list[str]:
    return [error.message for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)]


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_example_plan_passes_the_schema() -> None:
    assert schema_errors(yaml.safe_load(EXAMPLE.read_text())) == []


@pytest.mark.parametrize("text", GOOD)
def test_schema_and_loader_accept(text: str, tmp_path: Path) -> None:
    document = yaml.safe_load(text)
    assert schema_errors(document) == []
    parse_plan(document, tmp_path / "plan.yaml")


@pytest.mark.parametrize("text", BAD)
def test_schema_and_loader_reject(text: str, tmp_path: Path) -> None:
    document = yaml.safe_load(text)
    assert schema_errors(document) != []
    with pytest.raises(InputError):
        parse_plan(document, tmp_path / "plan.yaml")
