"""core.rollout: kubectl's rollout rule applied to a listing, and which checks that listing answers."""

from typing import Any

from core.rollout import confirmed_by_listing, rolled_out
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
