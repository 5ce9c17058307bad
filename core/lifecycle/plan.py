"""Plan (infra-plan): load -> read the live objects -> live → planned per object and field -> server-side dry
run -> warnings -> report.

Read-only: the cluster is read (`kubectl get`) and asked to validate each step (`--dry-run=server`: validation
and admission run, nothing is stored); nothing is gated, locked or changed.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from core import plan as plans
from core.changes import object_of, planned_state
from core.errors import PermanentError, TemporaryError
from core.expiry import will_roll_back
from core.k8s import parse_quantity
from core.policy import PolicyMode, findings_for
from core.report import RunReport, StepResult
from core.rollout import paused_in_the_way
from core.safeyaml import parse_one
from core.state import Objects, find, managing_hpa, state_of
from core.steps import Step, apply_steps

DRY_RUN_FLAG = "--dry-run=server"


class PlanCluster(Protocol):
    def capture(self, plan: plans.Plan) -> Objects:
        """Every workload and HPA the plan could touch, as they are now (a read)."""

    def dry_run(self, plan: plans.Plan, steps: Sequence[Step]) -> list[StepResult]:
        """Send each step with `--dry-run=server`: succeeded when the server accepts it, failed with its error."""


class PlanReporter(Protocol):
    def report(self, plan: plans.Plan, results: Sequence[StepResult], warnings: Sequence[str],
               blocking: Sequence[str] = ()) -> RunReport:
        """Publish the review (printed; in a flow also artifacts, and with a PR its comment and status);
        `blocking` (policy findings under INFRA_POLICY=block) fail it: `error:` lines, a failed `infra/plan`."""

    def fail(self, plan: plans.Plan, reason: str) -> RunReport:
        """The cluster could not be read: say why (and on the PR, a failed status)."""


def dry_run_steps(plan: plans.Plan) -> list[Step]:
    """The apply steps, each sent with `--dry-run=server`."""
    return [replace(step, args=(*step.args, DRY_RUN_FLAG)) for step in apply_steps(plan)]


def recorded_current(plan: plans.Plan) -> list[Any]:
    """Each action's `current` (what the cluster held when infra-scale wrote the plan), None where absent."""
    document = parse_one(plan.data, str(plan.path))
    actions = document.get("actions") if isinstance(document, Mapping) else None
    return [raw.get("current") if isinstance(raw, Mapping) else None for raw in actions or ()]


def _same_quantities(recorded: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    return all(live.get(name) is not None and parse_quantity(str(value)) == parse_quantity(str(live[name]))
               for name, value in recorded.items())


def _drift(action: plans.Action, current: Any, live: Objects) -> str | None:
    """What changed since the plan recorded `current`, or None when the live object still matches it."""
    state = state_of(action, live)
    where = object_of(action)
    if isinstance(action, plans.ScaleWorkload):
        now = state.get("replicas") if state is not None else None
        return None if now == current else f"{where} replicas was {current} when the plan was written, is {now} now"
    if isinstance(action, plans.UpdateResources):
        return _resources_drift(where, state, current)
    return _hpa_drift(where, state, current)


def _resources_drift(where: str, state: Any, current: Any) -> str | None:
    """The first container's requests or limits that differ from the recorded ones."""
    containers = (state or {}).get("containers") or {}
    for name, resources in containers.items():
        for part in ("requests", "limits"):
            recorded = (current or {}).get(part) or {}
            if not _same_quantities(recorded, (resources or {}).get(part) or {}):
                return (f"{where} container {name} {part} were {recorded} when the plan was written, are "
                        f"{(resources or {}).get(part) or {}} now")
    return None


def _hpa_drift(where: str, state: Any, current: Any) -> str | None:
    """The first of the HPA's recorded bounds that differs from the live one."""
    spec = (state or {}).get("spec") or {}
    for field in ("minReplicas", "maxReplicas"):
        if field in (current or {}) and spec.get(field) != current[field]:
            return f"{where} {field} was {current[field]} when the plan was written, is {spec.get(field)} now"
    return None


def _hpa_bounds_for(plan: plans.Plan, workload: plans.Workload, live: Objects) -> tuple[str, Any, Any] | None:
    """(HPA, min, max) of the HPA that will manage `workload` once the plan ran: the plan's own, else the live."""
    for action in plan.actions:
        if isinstance(action, plans.ApplyHpa) and action.workload == workload and action.bounds is not None:
            return f"hpa/{action.name}", action.bounds.min_replicas, action.bounds.max_replicas
    hpa = managing_hpa(workload, live)
    if hpa is None:
        return None
    spec = hpa.get("spec") or {}
    return f"hpa/{hpa['metadata']['name']}", spec.get("minReplicas", 1), spec.get("maxReplicas")


def _hpa_warning(plan: plans.Plan, action: plans.ScaleWorkload, live: Objects) -> str | None:
    """An HPA the plan leaves as it is manages the replicas it sets (apply refuses that scale). A planned count
    outside the bounds of an HPA the plan changes is a policy finding (core.policy), judged by the bounds after
    the plan, and said once, there."""
    hpa = _hpa_bounds_for(plan, action.workload, live)
    if hpa is None:
        return None
    name, low, high = hpa
    changed = any(isinstance(other, plans.ApplyHpa) and other.workload == action.workload
                  and other.bounds is not None for other in plan.actions)
    if changed:
        return None
    return (f"{name} manages {action.workload.ref} (min {low}, max {high}): it will move replicas away from "
            f"the planned {action.replicas}; change the HPA's bounds instead")


def warnings_for(plan: plans.Plan, live: Objects, current: Sequence[Any]) -> list[str]:
    """Objects that do not exist, paused Deployments the plan would roll out (apply refuses them), HPAs that
    would fight a planned replica count, drift since the plan."""
    warnings: list[str] = paused_in_the_way(plan, live)
    for index, action in enumerate(plan.actions):
        workload = action.workload
        if find(live, workload.kind, workload.name) is None:
            warnings.append(f"{workload.ref} does not exist in namespace {plan.namespace}")
            continue
        if isinstance(action, plans.UpdateResources) and action.container is not None and \
                action.container not in (state_of(action, live) or {}).get("containers", {}):
            warnings.append(f"{workload.ref} has no container {action.container!r}")
            continue
        if isinstance(action, plans.ScaleWorkload):
            warning = _hpa_warning(plan, action, live)
            if warning is not None:
                warnings.append(warning)
        recorded = current[index] if index < len(current) else None
        if recorded is not None:
            drift = _drift(action, recorded, live)
            if drift is not None:
                warnings.append(f"drift since the plan was written: {drift}")
    return warnings


@dataclass(frozen=True)
class PlanReview:
    """infra-plan: what the plan would change, live value → planned value, validated by the server."""

    plan_path: str
    load: Callable[[str], plans.Plan]
    cluster: PlanCluster
    reporter: PlanReporter
    policy: PolicyMode = PolicyMode.WARN

    def run(self) -> RunReport:
        plan = self.load(self.plan_path)
        try:
            live = self.cluster.capture(plan)
            checked = self.cluster.dry_run(plan, dry_run_steps(plan))
        except TemporaryError as error:
            return self.reporter.fail(plan, f"the cluster could not be reached ({error})")
        except PermanentError as error:
            return self.reporter.fail(plan, f"the cluster refused to be read ({error})")
        results = []
        for result, action in zip(checked, plan.actions, strict=True):
            before = state_of(action, live)
            results.append(replace(result, before=before, after=planned_state(plan, action, before)))
        findings = [f"policy: {finding}" for finding in findings_for(plan, live)]
        blocking = self.policy is PolicyMode.BLOCK
        warnings = [*([will_roll_back(plan.expires)] if plan.expires is not None else []),
                    *warnings_for(plan, live, recorded_current(plan)), *([] if blocking else findings)]
        return self.reporter.report(plan, results, warnings, findings if blocking else [])
