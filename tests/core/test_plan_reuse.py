"""A run's second read of its plan (its name, then its load_plan task) reuses the first parse, and only while the
plan and every file it reads are the same, byte for byte."""

from pathlib import Path

import pytest

from core.errors import InputError
from tasks.plan import parsed_plan

HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: shop}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}
  minReplicas: 2
  maxReplicas: 6
"""
PLAN = """\
namespace: shop
actions:
  - {type: scale_workload, name: web, replicas: 4}
  - {type: apply_hpa, name: web, manifest: hpa.yaml}
"""


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "hpa.yaml").write_text(HPA.format(target="web"))
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_an_unchanged_plan_is_parsed_once(plan: Path) -> None:
    assert parsed_plan(plan) is parsed_plan(plan)


def test_a_changed_plan_is_parsed_again(plan: Path) -> None:
    first = parsed_plan(plan)
    plan.write_text(PLAN.replace("replicas: 4", "replicas: 5"))

    again = parsed_plan(plan)

    assert again is not first and again.actions[0].replicas == 5  # type: ignore[union-attr]


def test_a_changed_manifest_is_validated_again(plan: Path) -> None:
    parsed_plan(plan)
    (plan.parent / "hpa.yaml").write_text(HPA.format(target="api"))  # an HPA for a workload the plan does not own

    with pytest.raises(InputError, match=r"hpa\.yaml"):
        parsed_plan(plan)
