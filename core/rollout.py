"""Which `rollout status` checks one namespace listing already answers.

`kubectl rollout status` names its objects through one client whose rate limiter allows 10 requests and then 5
a second, and it makes two (a list, then a watch) per workload: checking 1,000 workloads took 100 calls and
minutes. Each call first reads the object and judges it with the rule below (kubectl's DeploymentStatusViewer,
staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go), and ends at once when it is rolled out.
One `get deployments -o json` gives every object the same read, so the workloads it shows rolled out are
confirmed from it; any other one (waiting, past its progress deadline, a StatefulSet, or missing from the
listing) still gets its `rollout status` call, with kubectl's own waiting and messages.

A paused Deployment (`spec.paused: true`) rolls nothing out: its controller makes no ReplicaSet for a new
template, so `updatedReplicas` stays behind and `rollout status` waits out its whole timeout without saying why.
A plan that would change such a Deployment's template is refused before it starts (`paused_in_the_way`); one
that only scales it (or changes its HPA) needs no rollout, and the controller still scales a paused Deployment.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from core.k8s import Kind
from core.plan import ApplyHpa, Plan, ScaleWorkload
from core.state import Objects, find
from core.steps import Step


def rolled_out(deployment: Mapping[str, Any]) -> bool:
    """kubectl's "successfully rolled out": the controller saw the latest spec, every replica is updated and
    available, none of the old ones is left, and the progress deadline was not exceeded."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(metadata.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return False
    conditions = status.get("conditions") or []
    if any(c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded" for c in conditions):
        return False
    updated = int(status.get("updatedReplicas") or 0)
    wanted = spec.get("replicas")
    if wanted is not None and updated < int(wanted):
        return False
    return int(status.get("replicas") or 0) <= updated and int(status.get("availableReplicas") or 0) >= updated


def confirmed_by_listing(steps: Sequence[Step], deployments: Sequence[Mapping[str, Any]]) -> list[Step]:
    """The `rollout status deployment/<name>` steps whose deployment the listing shows rolled out."""
    done = {str((item.get("metadata") or {}).get("name")) for item in deployments
            if item.get("kind", Kind.DEPLOYMENT) == Kind.DEPLOYMENT and rolled_out(item)}
    return [step for step in steps
            if step.args[:2] == ("rollout", "status") and (step.obj or "").partition("/")[0] == "deployment"
            and step.obj is not None and step.obj.partition("/")[2] in done]


def paused(deployment: Mapping[str, Any] | None) -> bool:
    return deployment is not None and (deployment.get("spec") or {}).get("paused") is True


def paused_in_the_way(plan: Plan, live: Objects) -> list[str]:
    """`deployment/x is paused: resume it or remove it from the plan`, for each live paused Deployment whose pod
    template the plan changes (every action but a replica count or an HPA needs a rollout)."""
    rolled = dict.fromkeys(
        action.workload for action in plan.actions
        if action.workload.kind == Kind.DEPLOYMENT and not isinstance(action, ScaleWorkload | ApplyHpa))
    return [f"{workload.ref} is paused: resume it or remove it from the plan" for workload in rolled
            if paused(find(live, Kind.DEPLOYMENT, workload.name))]
