"""kubectl for infra-plan: read the plan's objects, and send each step as a server-side dry run. Nothing here
writes: `get` reads, and `--dry-run=server` asks the API server to validate and admit without storing."""

import time
from collections.abc import Sequence
from typing import Any

from core.errors import TemporaryError
from core.k8s import Kind
from core.plan import Plan
from core.report import StepResult
from core.steps import Step
from core.vocabulary import StepStatus
from integrations.kubectl import Kubectl, KubectlError, retry_transient, run
from integrations.policy_read import get_with_policy

READ_DEADLINE_S = 30.0
REFUSED_DEADLINE_S = 3.0
"""A server that refuses the connection (nothing listens there: a wrong kubeconfig, a cluster that is down) is
retried this long, not READ_DEADLINE_S: the person at the terminal learns it in seconds."""


def read_once(kubectl: Kubectl, plan: Plan) -> list[dict[str, Any]]:
    """Every workload and HPA the plan could touch, and the namespace's policy objects (core.policy), in one
    `kubectl get a,b,... -o json` (the plan's one namespace)."""
    if not plan.actions:
        return []
    kinds = sorted({action.workload.kind for action in plan.actions})
    return get_with_policy(kubectl, plan.namespace,
                           [Kind(kind).plural for kind in kinds] + [Kind.HPA.plural])


def live_objects(kubectl: Kubectl, plan: Plan) -> list[dict[str, Any]]:
    """`read_once`, retried when transient (briefly when the server refuses the connection)."""
    started = time.monotonic()

    def read() -> list[dict[str, Any]]:
        return read_once(kubectl, plan)

    try:
        return retry_transient(read, started + REFUSED_DEADLINE_S)
    except TemporaryError as error:
        if refused(error):
            raise
    return retry_transient(read, started + READ_DEADLINE_S)


def refused(error: Exception) -> bool:
    """kubectl's words for a connection the server's address refused."""
    text = str(error)
    return "connection refused" in text or " was refused" in text


def dry_run(kubectl: Kubectl, plan: Plan, steps: Sequence[Step]) -> list[StepResult]:
    """Each step as sent (`--dry-run=server` already in its args): succeeded when the server accepts it."""
    results = []
    for step in steps:
        try:
            result = run(kubectl, plan.namespace, step.args, stdin=step.stdin)
        except KubectlError as error:
            results.append(StepResult(step, StepStatus.FAILED, attempts=1, error=str(error)))
            continue
        status = StepStatus.SUCCEEDED if result.ok else StepStatus.FAILED
        results.append(StepResult(step, status, attempts=1, duration_s=result.duration_s,
                                  error=None if result.ok else result.message))
    return results
