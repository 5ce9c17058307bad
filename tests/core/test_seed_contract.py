"""The predecessor's output contract: the seed's own test, flags, order of steps and JSON fields."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.args import parse
from core.errors import InputError
from core.plan import load_plan
from core.record import RECORD_ANNOTATION, record_name
from core.steps import apply_steps, seed_rollback_steps

HPA = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
       "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 3}\n")
REPO = Path(__file__).resolve().parents[2]


def write_plan(directory: Path, text: str) -> Path:
    (directory / "previous-hpa.yaml").write_text(HPA)
    plan = directory / "plan.yaml"
    plan.write_text(text)
    return plan


def run_cli(flow: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / f"infra-{flow}"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_the_seeds_own_test(tmp_path: Path) -> None:
    """infra.rollback.spec.ts: previews rollout undo and HPA hint apply, then `succeeded`."""
    plan = write_plan(tmp_path, "namespace: testns\nactions:\n  - {type: scale_workload, name: web, replicas: 3}\n"
                                "rollbackHints:\n  - previous-hpa.yaml\n")
    result = run_cli("rollback", f"--plan={plan}", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "preview: kubectl -n testns rollout undo deployment/web" in result.stdout
    assert "preview: kubectl -n testns apply -f previous-hpa.yaml" in result.stdout
    assert "note: manual hint: previous-hpa.yaml" in result.stdout
    assert result.stdout.splitlines()[-1] == "succeeded"


def test_seed_rollback_order_hints_then_undo_then_delete_hpa(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, """\
namespace: assistant
actions:
  - {type: scale_workload, name: web, replicas: 3}
  - {type: update_resources, name: api, requests: {cpu: 100m}}
  - {type: apply_hpa, name: api, maxReplicas: 4}
rollbackHints:
  - previous-hpa.yaml
  - kubectl rollout undo deployment/web -n assistant
""")
    steps = seed_rollback_steps(load_plan(plan))
    assert [step.args for step in steps] == [
        ("apply", "-f", "-"),  # the validated object on stdin, never the file (issue 25)
        ("rollout", "undo", "deployment/web"),
        ("rollout", "undo", "deployment/api"),
        ("delete", "hpa", "api"),  # previous-hpa.yaml covers hpa "web", not "api"
    ]
    assert [step.type for step in steps] == ["hint", "action", "action", "action"]
    assert steps[0].command("assistant") == "kubectl -n assistant apply -f previous-hpa.yaml"
    assert json.loads(steps[0].stdin or "") == yaml.safe_load(HPA)


def test_a_hint_manifest_for_the_hpa_replaces_the_delete(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, maxReplicas: 4}\n"
                                "rollbackHints: [previous-hpa.yaml]\n")
    steps = seed_rollback_steps(load_plan(plan))
    assert [(step.args, step.stdin_file) for step in steps] == [(("apply", "-f", "-"), "previous-hpa.yaml")]


def test_one_undo_per_workload_even_with_two_actions(tmp_path: Path) -> None:
    """Undoing twice would flip the template back; the seed's intent is one undo per deployment."""
    plan = write_plan(tmp_path, "namespace: ns\nactions:\n  - {type: scale_workload, name: web, replicas: 3}\n"
                                "  - {type: update_resources, name: web, limits: {cpu: 1}}\n")
    steps = seed_rollback_steps(load_plan(plan))
    assert [step.args for step in steps] == [("rollout", "undo", "deployment/web")]
    assert steps[0].notes == ("deployment/web: one rollout undo covers scale_workload and update_resources",)


def test_json_summary_keeps_the_seeds_fields(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "namespace: testns\nactions:\n  - {type: scale_workload, name: web, replicas: 3}\n"
                                "rollbackHints:\n  - previous-hpa.yaml\n")
    result = run_cli("rollback", f"--plan={plan}")
    lines = result.stdout.splitlines()
    end = len(lines) - 1 - lines[::-1].index("}")
    document = json.loads("\n".join(lines[lines.index("{"):end + 1]))
    assert lines[end + 1:] == ["previewed: nothing changed", "succeeded"], "a preview says so before the last line"
    assert document["ok"] is True and document["executed"] is False and document["namespace"] == "testns"
    assert document["results"][0] == {**document["results"][0], "ok": True, "type": "hint",
                                      "note": "will apply previous-hpa.yaml"}, "a preview's notes: future tense"
    assert document["results"][1] == {**document["results"][1], "ok": True, "type": "action",
                                      "action": "scale_workload", "note": "will roll back deployment/web"}


def test_forward_steps_are_kubectl_argument_lists(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, """\
namespace: ns
actions:
  - {type: scale_workload, kind: StatefulSet, name: db, replicas: 0}
  - {type: update_resources, name: api, container: app, resources: {requests: {cpu: 250m}, limits: {memory: 1Gi}}}
  - {type: apply_hpa, name: web, manifest: previous-hpa.yaml}
  - {type: apply_hpa, name: api, minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 60}
""")
    steps = apply_steps(load_plan(plan))
    assert [step.args for step in steps] == [
        ("scale", "statefulset/db", "--replicas=0"),
        ("set", "resources", "deployment/api", "-c=app", "--requests=cpu=250m", "--limits=memory=1Gi"),
        ("apply", "-f", "-"),
        ("apply", "-f", "-"),
    ]
    assert json.loads(steps[2].stdin or "") == yaml.safe_load(HPA)  # the manifest as validated, as JSON
    assert steps[2].command("ns") == "kubectl -n ns apply -f previous-hpa.yaml"
    manifest = json.loads(steps[3].stdin or "")
    assert manifest["spec"]["minReplicas"] == 2 and manifest["spec"]["maxReplicas"] == 5
    assert manifest["metadata"] == {"name": "api", "namespace": "ns",  # stamped from its creation on
                                    "annotations": {RECORD_ANNOTATION: record_name(load_plan(plan))}}
    assert manifest["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_command_hints_are_normalised(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, """\
namespace: ns
actions:
  - {type: scale_workload, name: web, replicas: 5}
  - {type: scale_workload, kind: StatefulSet, name: db, replicas: 1}
rollbackHints:
  - kubectl -n ns scale deploy web --replicas 2 --current-replicas=5
  - kubectl delete horizontalpodautoscaler/web --namespace=ns
  - kubectl apply -f ./previous-hpa.yaml
  - kubectl rollout undo sts/db --to-revision=3
""")
    hints = load_plan(plan).hints
    assert [getattr(hint, "args", None) for hint in hints] == [
        ("scale", "deployment/web", "--replicas=2", "--current-replicas=5"),
        ("delete", "hpa", "web"),
        ("apply", "-f", "./previous-hpa.yaml"),
        ("rollout", "undo", "statefulset/db", "--to-revision=3"),
    ]


def test_prnum_environment_and_flags() -> None:
    assert parse("apply", ["--execute"], {"PRNUM": "42"}).pr == 42
    assert parse("apply", ["--pr=7"], {"PRNUM": "42"}).pr == 7
    assert parse("rollback", [], {}).execute is False
    with pytest.raises(InputError, match="PRNUM"):
        parse("apply", [], {"PRNUM": "x1"})


def test_execute_without_pr_is_bad_input(tmp_path: Path) -> None:
    """The Node scripts skipped (exit 0) here, so a CI job missing PRNUM passed green; now it is bad input."""
    plan = write_plan(tmp_path, "namespace: testns\nactions: []\n")
    result = run_cli("apply", f"--plan={plan}", "--execute")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: arguments: --pr: --execute needs a pull request: pass --pr=<number> or set PRNUM"]


def test_default_plan_is_the_seed_path() -> None:
    result = run_cli("rollback")
    assert result.returncode == 0, result.stderr
    assert "preview: kubectl -n assistant apply -f previous-hpa.yaml" in result.stdout


def test_a_scale_hint_replaces_the_undo_of_a_scale_only_workload(tmp_path: Path) -> None:
    """A generated plan's exact `scale --replicas=<before>` hint beats `rollout undo` (kubernetes#25236)."""
    plan = write_plan(tmp_path, """\
namespace: ns
actions:
  - {type: scale_workload, name: web, replicas: 5}
  - {type: update_resources, name: api, limits: {cpu: 1}}
rollbackHints:
  - kubectl scale deployment/web --replicas=2 --current-replicas=5 -n ns
""")
    assert [step.args for step in seed_rollback_steps(load_plan(plan))] == [
        ("scale", "deployment/web", "--replicas=2", "--current-replicas=5"),
        ("rollout", "undo", "deployment/api"),
    ]


@pytest.mark.parametrize("flow", ["apply", "rollback"])
def test_a_preview_never_imports_prefect(flow: str, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "namespace: testns\nactions:\n  - {type: scale_workload, name: web, replicas: 3}\n")
    code = (f"import io, sys; from cli.main import run; code = run({flow!r}, ['--plan={plan}'], out=io.StringIO()); "
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                            env={**os.environ, "KUBECTL": "false"})
    assert result.stdout.strip() == "0 []", result.stdout + result.stderr
