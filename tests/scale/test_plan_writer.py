"""Plan rendering: seed format, readable, loads back with load_plan, carries previous manifests and hints."""

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from core.desired import DesiredState, parse_desired
from core.diff import Diff, diff
from core.plan import load_plan
from core.plan_writer import pr_body, render_plan, scale_report
from core.steps import apply_steps, seed_rollback_steps
from integrations.pull_request import repository_paths, write_files_atomically, write_plan_locally
from tests.scale.helpers import deployment, hpa

NOW = date(2026, 11, 28)


def desired(*workloads: dict[str, Any]) -> DesiredState:
    return parse_desired(
        {"target": "prod", "namespace": "assistant", "workloads": list(workloads)}, "ops/desired/prod.yaml"
    )


def seed_like() -> tuple[DesiredState, list[dict[str, Any]]]:
    """The seed's example plan as a diff: scale web, resources for api, HPA bounds for worker."""
    state = desired(
        {"name": "web", "replicas": 4},
        {
            "name": "api",
            "containers": {
                "app": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
            },
        },
        {"name": "worker", "hpa": {"minReplicas": 3, "maxReplicas": 8, "targetCPUUtilizationPercentage": 70}},
    )
    live = [
        deployment("web", 2),
        deployment("api", 2, {"app": {"requests": {"cpu": "100m"}}}),
        deployment("worker", 2),
        hpa("worker", "worker", 2, 6, cpu=80),
    ]
    for item in live:
        item["metadata"]["namespace"] = "assistant"
    return state, live


def test_round_trip_through_load_plan(tmp_path: Path) -> None:
    state, live = seed_like()
    changes = diff(state, live)
    written = write_plan_locally(state, changes, tmp_path, NOW)
    assert sorted(p.name for p in (tmp_path / "prod").iterdir()) == ["plan.yaml", "previous-hpa-worker.yaml"]
    plan = written.plan
    assert plan.actions == changes.actions
    assert (plan.namespace, plan.target) == ("assistant", "prod")
    assert [h.path if hasattr(h, "path") else h.text for h in plan.hints] == [
        "previous-hpa-worker.yaml",
        "kubectl scale deployment/web --replicas=2 --current-replicas=4 -n assistant",
        "kubectl rollout undo deployment/api -n assistant",
    ]
    assert [s.command("assistant") for s in apply_steps(plan)][:2] == [
        "kubectl -n assistant scale deployment/web --replicas=4",
        "kubectl -n assistant set resources deployment/api -c=app --requests=cpu=250m,memory=256Mi "
        "--limits=cpu=1,memory=512Mi",
    ]
    # the seed's rollback (no records) re-applies the previous HPA instead of deleting it
    rollback = [s.command("assistant").removeprefix("kubectl -n assistant ") for s in seed_rollback_steps(plan)]
    assert "apply -f previous-hpa-worker.yaml" in rollback
    assert "delete hpa worker" not in rollback


def test_plan_text_is_readable_seed_format() -> None:
    state, live = seed_like()
    text = render_plan(state, diff(state, live), NOW)["plan.yaml"]
    assert text.startswith(
        "# infra-scale plan for target prod (namespace assistant), generated "
        "on 2026-11-28 from ops/desired/prod.yaml."
    )
    assert "\ngeneratedAt: '2026-11-28'\n" in text
    assert render_plan(state, diff(state, live), NOW) == render_plan(state, diff(state, live), NOW)  # same bytes
    assert "  requests: {cpu: 250m, memory: 256Mi}\n" in text
    assert "  limits: {cpu: '1', memory: 512Mi}\n" in text
    document = yaml.safe_load(text)
    assert list(document) == ["namespace", "target", "generatedAt", "actions", "rollbackHints"]
    assert document["actions"][0] == {"type": "scale_workload", "name": "web", "replicas": 4, "current": 2}
    assert document["actions"][2]["current"] == {
        "minReplicas": 2,
        "maxReplicas": 6,
        "targetCPUUtilizationPercentage": 80,
    }


def test_previous_manifest_is_clean() -> None:
    state, live = seed_like()
    manifest = yaml.safe_load(render_plan(state, diff(state, live), NOW)["previous-hpa-worker.yaml"])
    assert manifest["metadata"] == {"name": "worker", "namespace": "assistant"}
    assert "status" not in manifest and manifest["spec"]["minReplicas"] == 2


def test_hpa_created_by_plan_has_no_previous_and_rolls_back_by_delete(tmp_path: Path) -> None:
    state = desired({"name": "web", "hpa": {"maxReplicas": 5}})
    plan = write_plan_locally(state, diff(state, [deployment("web")]), tmp_path, NOW).plan
    assert plan.hints == ()
    assert [s.args for s in seed_rollback_steps(plan)] == [("delete", "hpa", "web")]


def test_context_and_statefulset_and_workload_field(tmp_path: Path) -> None:
    state = parse_desired(
        {
            "target": "prod",
            "namespace": "ns",
            "context": "prod-eu",
            "workloads": [{"kind": "StatefulSet", "name": "db", "replicas": 3}, {"name": "web", "replicas": 6}],
        },
        "d.yaml",
    )
    live = [deployment("db", 1, kind="StatefulSet"), deployment("web", 2), hpa("web-hpa", "web", 2, 4)]
    plan = write_plan_locally(state, diff(state, live), tmp_path, NOW).plan
    assert plan.context == "prod-eu"
    text = (tmp_path / "prod" / "plan.yaml").read_text()
    assert "kind: StatefulSet" in text and "workload: web" in text
    assert "# note: deployment/web is managed by hpa/web-hpa" in text
    assert apply_steps(plan)[0].command("ns") == "kubectl -n ns scale statefulset/db --replicas=3"


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    write_files_atomically(tmp_path / "x", {"a.yaml": "a: 1\n", "b.yaml": "b: 2\n"})
    write_files_atomically(tmp_path / "x", {"a.yaml": "a: 3\n"})
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["a.yaml", "b.yaml"]
    assert (tmp_path / "x" / "a.yaml").read_text() == "a: 3\n"


def test_repository_paths(tmp_path: Path) -> None:
    assert repository_paths("ops/plans/infra-scale", "prod", ["plan.yaml"]) == {
        "plan.yaml": "ops/plans/infra-scale/prod/plan.yaml"
    }
    assert repository_paths(tmp_path / "plans", "t", ["plan.yaml"], cwd=tmp_path) == {"plan.yaml": "plans/t/plan.yaml"}


def test_pr_body_and_report(tmp_path: Path) -> None:
    state, live = seed_like()
    changes = diff(state, live)
    written = write_plan_locally(state, changes, tmp_path, NOW)
    plan = written.plan
    body = pr_body(plan, written.live, "ops/plans/infra-scale/prod/plan.yaml", state.source)
    web = next(item for item in live if item["metadata"]["name"] == "web" and item["kind"] == "Deployment")
    assert f"| `deployment/web` | replicas | {web['spec']['replicas']} → **4** | previewed |" in body, \
        "change-centric rows, from the live value the plan was written against"
    assert "?" not in body.split("| previewed |")[0], "every before value was read"
    assert "| 1 | `kubectl -n assistant scale deployment/web --replicas=4` |" in body, "commands, collapsed"
    assert "`execute-plan`" in body
    report = scale_report(state, changes, plan, "ops/plans/infra-scale/prod/plan.yaml", False)
    assert report.lines[0] == "preview: kubectl -n assistant scale deployment/web --replicas=4"
    assert report.final == "succeeded" and report.document is not None
    assert report.document["executed"] is False and len(report.document["results"]) == 3
    nothing = scale_report(state, Diff((), {}, ()), None, None, False)
    assert nothing.lines[-1].startswith("note: nothing to do")
    assert nothing.document is not None and nothing.document["results"] == []
    failed = scale_report(state, None, None, None, True, error="boom")
    assert failed.final == "failed" and failed.exit_code == 1


def test_loaded_round_trip_equals_file(tmp_path: Path) -> None:
    state, live = seed_like()
    write_plan_locally(state, diff(state, live), tmp_path, NOW)
    again = load_plan(tmp_path / "prod" / "plan.yaml")
    assert len(again.actions) == 3


def test_report_for_a_pr_left_alone(tmp_path: Path) -> None:
    state, live = seed_like()
    changes = diff(state, live)
    plan = write_plan_locally(state, changes, tmp_path, NOW).plan
    report = scale_report(state, changes, plan, "p/plan.yaml", True, {"number": 7, "blocked": "applied"})
    assert report.final == "skipped" and report.exit_code == 0
    assert "note: not updating pull request #7: applied" in report.lines
