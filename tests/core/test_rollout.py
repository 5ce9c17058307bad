"""core.rollout: kubectl's rollout rule applied to a listing, and which checks that listing answers."""

from pathlib import Path
from typing import Any

from core.plan import parse_plan
from core.rollout import confirmed_by_listing, paused_in_the_way, rolled_out
from core.steps import rollout_steps


def deployment(name: str, generation: int = 2, observed: int = 2, replicas: int = 3, updated: int = 3,
               total: int = 3, available: int = 3, reason: str = "NewReplicaSetAvailable") -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": name, "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": reason}]}}


def test_rolled_out_follows_kubectls_deployment_status_viewer() -> None:
    assert rolled_out(deployment("web"))
    assert not rolled_out(deployment("web", generation=3)), "the controller has not seen the latest spec"
    assert not rolled_out(deployment("web", updated=2, total=3, available=2)), "new replicas still being updated"
    assert not rolled_out(deployment("web", total=4)), "an old replica is pending termination"
    assert not rolled_out(deployment("web", available=2)), "an updated replica is not available yet"
    assert not rolled_out(deployment("web", reason="ProgressDeadlineExceeded"))
    assert not rolled_out({"kind": "Deployment", "metadata": {"name": "new", "generation": 1}, "spec": {}})


def test_only_rollout_checks_of_deployments_the_listing_shows_rolled_out_are_confirmed() -> None:
    steps = rollout_steps(["deployment/a", "deployment/b", "statefulset/c", "deployment/gone"], 7, 120)
    listing = [deployment("a"), deployment("b", available=1), {**deployment("c"), "kind": "StatefulSet"}]

    assert [(step.number, step.obj) for step in confirmed_by_listing(steps, listing)] == [(7, "deployment/a")]


def paused_deployment(name: str, paused: object = True) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": 2, "paused": paused}}


def test_a_paused_deployment_is_in_the_way_only_of_a_rollout(tmp_path: Path) -> None:
    plan = parse_plan({"namespace": "shop", "actions": [
        {"type": "scale_workload", "name": "web", "replicas": 4},
        {"type": "apply_hpa", "name": "web", "minReplicas": 2, "maxReplicas": 5},
        {"type": "update_resources", "name": "api", "container": "app", "requests": {"cpu": "300m"}},
        {"type": "update_resources", "name": "api", "container": "side", "limits": {"cpu": "1"}},
    ]}, tmp_path / "plan.yaml")

    assert paused_in_the_way(plan, [paused_deployment("web"), paused_deployment("api", False)]) == []
    assert paused_in_the_way(plan, [paused_deployment("web"), paused_deployment("api")]) == [
        "deployment/api is paused: resume it or remove it from the plan"]
    assert paused_in_the_way(plan, [paused_deployment("api", "yes")]) == [], "only a boolean true pauses"
