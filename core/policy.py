"""Policy checks: what the namespace's ResourceQuotas, LimitRanges and PodDisruptionBudgets, and the HPAs, will
say about a plan once it is applied, computed from one live read of the namespace (no cluster call here).

* ResourceQuota: `pods`, `cpu`, `memory`, `requests.*` and `limits.*` after the plan, against `hard`. The quota's
  own `status.used` is the starting point; each workload the plan touches adds what it will run (replicas times
  its pods' values, with the LimitRanges' defaults filled in as admission fills them; an HPA-managed workload at
  its HPA's `maxReplicas`) in place of what it runs now; a Deployment whose pod template changes also at the
  peak of its rollout, old and new pods side by side within maxSurge.
* LimitRange: each container of a workload the plan touches, after the plan, against `min`, `max` and
  `maxLimitRequestRatio` (Container items) and the pod's sums (Pod items).
* PodDisruptionBudget: the pods it selects after the plan (an HPA-managed workload at its `minReplicas`) below
  `minAvailable`, or leaving no disruption allowed.
* HPA: a planned replica count outside the bounds the HPA will enforce, and a `minReplicas` above the pods a
  quota leaves room for.

Every finding is one sentence naming the object, the rule and the figures.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.changes import planned_state
from core.conventions import POLICY_UNREAD_KIND as UNREAD_KIND
from core.conventions import Env
from core.errors import InputError
from core.k8s import DNS_LABEL_PATTERN, WORKLOAD_KINDS, Kind, parse_quantity, resource_name_problem
from core.plan import ApplyHpa, Plan, ScaleWorkload, UpdateResources, Workload
from core.state import Objects, managing_hpa

POLICY_ENV = Env.POLICY
POLICY_RESOURCES = ("resourcequotas", "limitranges", "poddisruptionbudgets")
"""What the live read adds to the plan's workloads and HPAs, in the same `kubectl get`."""
_COMPUTE = ("cpu", "memory", "ephemeral-storage")
_GI, _MI, _KI = Decimal(2**30), Decimal(2**20), Decimal(2**10)
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class PolicyMode(StrEnum):
    WARN = "warn"
    """Findings are shown (notes, warnings) and the run goes on."""
    BLOCK = "block"
    """A finding refuses the apply, and infra-plan's status fails."""


def policy_mode(value: str | None, source: str = POLICY_ENV) -> PolicyMode:
    """`warn` (also when unset or empty) or `block`; anything else is bad input."""
    text = (value or "").strip()
    if not text:
        return PolicyMode.WARN
    try:
        return PolicyMode(text)
    except ValueError:
        raise InputError(source, "policy", f"{text[:40]!r} is not one of warn, block") from None


def chosen_mode(parameter: str | None, env: Mapping[str, str]) -> PolicyMode:
    """The flow's (deployment's) `policy` parameter when given, else $INFRA_POLICY, else warn."""
    if parameter is not None:
        return policy_mode(parameter, "parameters")
    return policy_mode(env.get(POLICY_ENV), POLICY_ENV)


@dataclass(frozen=True)
class Finding:
    obj: str
    """kubectl's `kind/name` of the policy object: `resourcequota/compute`, `hpa/web`."""
    rule: str
    """What it checks: `requests.cpu`, `max cpu per Container`, `minAvailable`, `bounds`."""
    text: str
    """The sentence shown, naming the object, the rule and the figures."""

    def __str__(self) -> str:
        return self.text


Resources = Mapping[str, Mapping[str, Any]]
"""A container's `resources`: {"requests": {...}, "limits": {...}}."""


@dataclass(frozen=True)
class _Workload:
    """A workload of the namespace now and after the plan."""

    ref: str
    labels: Mapping[str, Any]
    replicas_now: int
    replicas_after: int
    containers_now: Mapping[str, Resources]
    containers_after: Mapping[str, Resources]
    hpa_after: tuple[str, int, int] | None
    """(HPA name, minReplicas, maxReplicas) of the HPA that will manage it after the plan."""
    touched: bool
    scaled: int | None
    """The replica count a ScaleWorkload sets, if one does."""
    creates_pods: bool
    """Whether the plan makes it create pods (more replicas, new resources): admission judges those."""
    surge: int
    """The extra pods its rollout of the plan's new pod template may run (maxSurge); 0 when nothing rolls."""

    @property
    def most_pods(self) -> int:
        """The most pods it may run after the plan: an HPA's maxReplicas."""
        return self.hpa_after[2] if self.hpa_after is not None else self.replicas_after

    @property
    def settled_pods(self) -> int:
        """The pods it runs once the plan settled: the planned count, moved into its HPA's bounds."""
        if self.hpa_after is None:
            return self.replicas_after
        return min(max(self.replicas_after, self.hpa_after[1]), self.hpa_after[2])


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return parse_quantity(str(value)) if isinstance(value, str | float) else None


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _named(item: Mapping[str, Any]) -> bool:
    """Whether the object's name is one an API server accepts: only such names are put in a finding (what a
    read returns is hostile until checked; a name with a newline would forge an output line)."""
    name = _mapping(item.get("metadata")).get("name")
    return isinstance(name, str) and _SUBDOMAIN.fullmatch(name) is not None


def _containers(workload: Mapping[str, Any]) -> dict[str, Resources]:
    spec = _mapping(_mapping(_mapping(workload.get("spec")).get("template")).get("spec"))
    found = spec.get("containers")
    return {str(c.get("name")): {part: {k: v for k, v in _mapping(_mapping(c.get("resources")).get(part)).items()
                                        if resource_name_problem(k) is None}
                                 for part in ("requests", "limits")}
            for c in (found if isinstance(found, list) else ())
            if isinstance(c, Mapping) and re.fullmatch(DNS_LABEL_PATTERN, str(c.get("name")))}


def _hpa_bounds(hpa: Mapping[str, Any]) -> tuple[int, int]:
    spec = _mapping(hpa.get("spec"))
    return _int(spec.get("minReplicas"), 1), _int(spec.get("maxReplicas"), 1)


def _planned_hpa(plan: Plan, action: ApplyHpa) -> tuple[str, int, int] | None:
    if action.bounds is not None:
        return action.name, action.bounds.min_replicas, action.bounds.max_replicas
    state = planned_state(plan, action, None)
    if state is None:
        return None
    return (action.name, *_hpa_bounds(state))


def _workloads(plan: Plan, live: Objects) -> list[_Workload]:
    """Every workload of the live read, with the plan's actions on it applied."""
    result = []
    for item in live:
        if item.get("kind") not in WORKLOAD_KINDS or not _named(item):
            continue
        workload = Workload(str(item.get("kind")), str(_mapping(item.get("metadata")).get("name")))
        spec = _mapping(item.get("spec"))
        replicas = _int(spec.get("replicas"), 1)
        now = _containers(item)
        after = {name: {part: dict(values) for part, values in resources.items()} for name, resources in now.items()}
        live_hpa = managing_hpa(workload, live)
        hpa = (str(live_hpa["metadata"]["name"]), *_hpa_bounds(live_hpa)) \
            if live_hpa is not None and _named(live_hpa) else None
        touched, scaled, creates_pods = False, None, False
        for action in plan.actions:
            if action.workload != workload:
                continue
            touched = True
            if isinstance(action, ScaleWorkload):
                scaled = action.replicas
                creates_pods = creates_pods or action.replicas > replicas
            elif isinstance(action, UpdateResources):
                creates_pods = True
                for name, resources in after.items():
                    if action.container in (None, name):
                        resources["requests"].update(action.requests)
                        resources["limits"].update(action.limits)
            else:
                hpa = _planned_hpa(plan, action) or hpa
        labels = _mapping(_mapping(_mapping(spec.get("template")).get("metadata")).get("labels"))
        replicas_after = scaled if scaled is not None else replicas
        rolls = workload.kind == Kind.DEPLOYMENT and after != now
        surge = _max_surge(spec, hpa[2] if hpa is not None else replicas_after) if rolls else 0
        result.append(_Workload(workload.ref, labels, replicas, replicas_after, now, after, hpa, touched, scaled,
                                creates_pods, surge))
    return result


def _max_surge(spec: Mapping[str, Any], replicas: int) -> int:
    """A Deployment's maxSurge in pods (a percentage rounds up, as the controller's fenceposts do); Recreate
    runs no extra pod."""
    strategy = _mapping(spec.get("strategy"))
    if strategy.get("type") == "Recreate":
        return 0
    value = _mapping(strategy.get("rollingUpdate")).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(replicas * int(value[:-1]) / 100)
    return _int(value, 0)


def _of_kind(live: Objects, kind: str) -> list[Mapping[str, Any]]:
    return [item for item in live if item.get("kind") == kind and _named(item)]


def _name(item: Mapping[str, Any]) -> str:
    return str(_mapping(item.get("metadata")).get("name"))


def _show(value: Decimal, resource: str) -> str:
    """A figure as a reader compares it: cores as decimals (`7.5`), bytes in binary units (`1.5Gi`)."""
    if resource in ("memory", "ephemeral-storage", "storage") or resource.endswith("storage"):
        for unit, size in (("Gi", _GI), ("Mi", _MI), ("Ki", _KI)):
            if abs(value) >= size:
                return f"{(value / size).quantize(Decimal('0.01')).normalize():f}{unit}"
    exponent = value.normalize().as_tuple().exponent
    exact = isinstance(exponent, int) and exponent >= -3
    return f"{(value if exact else value.quantize(Decimal('0.001'))).normalize():f}"


# --- LimitRange ----------------------------------------------------------------------------------------------


def _limit_items(live: Objects, kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(LimitRange name, item) of every item of that type (`Container`, `Pod`)."""
    items = []
    for limit_range in _of_kind(live, "LimitRange"):
        found = _mapping(limit_range.get("spec")).get("limits")
        for item in found if isinstance(found, list) else ():
            if isinstance(item, Mapping) and item.get("type") == kind:
                items.append((_name(limit_range), item))
    return items


def _defaulted(containers: Mapping[str, Resources], live: Objects) -> dict[str, Resources]:
    """The containers as the pods get them: LimitRanger fills a missing request or limit from the Container
    items' `defaultRequest` / `default` (a default limit also stands in for a missing request)."""
    result: dict[str, Resources] = {}
    for name, resources in containers.items():
        requests, limits = dict(resources.get("requests") or {}), dict(resources.get("limits") or {})
        for _, item in _limit_items(live, "Container"):
            defaults = {**_mapping(item.get("max")), **_mapping(item.get("default"))}
            for resource, value in defaults.items():
                limits.setdefault(resource, value)
            for resource, value in {**_mapping(item.get("min")), **defaults,
                                    **_mapping(item.get("defaultRequest"))}.items():
                requests.setdefault(resource, value)
        result[name] = {"requests": requests, "limits": limits}
    return result


def _limit_range_findings(workload: _Workload, live: Objects) -> list[Finding]:
    findings = []
    containers = _defaulted(workload.containers_after, live)
    for range_name, item in _limit_items(live, "Container"):
        obj = f"limitrange/{range_name}"
        for name, resources in containers.items():
            where = f"{workload.ref} container {name}"
            findings += _bounds_findings(obj, where, "Container", item, resources)
    for range_name, item in _limit_items(live, "Pod"):
        totals: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
        for resources in containers.values():
            for part in ("requests", "limits"):
                for resource, value in (resources.get(part) or {}).items():
                    amount = _quantity(value)
                    if amount is not None:
                        totals[part][resource] = totals[part].get(resource, Decimal(0)) + amount
        shown = {part: {k: _show(v, k) for k, v in values.items()} for part, values in totals.items()}
        findings += _bounds_findings(f"limitrange/{range_name}", f"{workload.ref} pods", "Pod", item, shown)
    return findings


def _resources(values: Any) -> list[tuple[str, Any]]:
    """A LimitRange item's {resource: quantity}, sorted, without names no API server accepts."""
    return sorted((k, v) for k, v in _mapping(values).items() if resource_name_problem(k) is None)


def _bounds_findings(obj: str, where: str, per: str, item: Mapping[str, Any],
                     resources: Resources) -> list[Finding]:
    findings = []
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for resource, low in _resources(item.get("min")):
        for part, values in (("requests", requests), ("limits", limits)):
            value = _quantity(values.get(resource))
            bound = _quantity(low)
            if value is not None and bound is not None and value < bound:
                findings.append(Finding(obj, f"min {resource} per {per}", (
                    f"{obj}: {where} {part}.{resource} {values[resource]} is below the minimum {low} per {per}; "
                    "its pods will be refused")))
    for resource, high in _resources(item.get("max")):
        value, bound = _quantity(limits.get(resource)), _quantity(high)
        if value is not None and bound is not None and value > bound:
            findings.append(Finding(obj, f"max {resource} per {per}", (
                f"{obj}: {where} limits.{resource} {limits[resource]} is above the maximum {high} per {per}; "
                "its pods will be refused")))
    for resource, ratio in _resources(item.get("maxLimitRequestRatio")):
        request, limit, bound = (_quantity(requests.get(resource)), _quantity(limits.get(resource)),
                                 _quantity(ratio))
        if request and limit is not None and bound is not None and limit / request > bound:
            findings.append(Finding(obj, f"maxLimitRequestRatio {resource}", (
                f"{obj}: {where} {resource} limit {limits[resource]} is {_show(limit / request, 'ratio')} times its "
                f"request {requests[resource]}, above the maxLimitRequestRatio {ratio}; its pods will be refused")))
    return findings


# --- ResourceQuota -------------------------------------------------------------------------------------------


def _per_pod(key: str, containers: Mapping[str, Resources]) -> Decimal | None:
    """What one pod counts against quota key `key`; None for keys that do not count pods' resources."""
    if key == "pods":
        return Decimal(1)
    part, _, resource = key.partition(".")
    if key in _COMPUTE:
        part, resource = "requests", key
    elif part not in ("requests", "limits") or not resource:
        return None
    total = Decimal(0)
    for resources in containers.values():
        total += _quantity((resources.get(part) or {}).get(resource)) or Decimal(0)
    return total


def _pod_value(key: str, containers: Mapping[str, Resources], live: Objects) -> Decimal:
    """What one pod with these containers (LimitRange defaults filled in) counts against `key`."""
    return _per_pod(key, _defaulted(containers, live)) or Decimal(0)


def _resource_of(key: str) -> str:
    return key.partition(".")[2] if key.startswith(("requests.", "limits.")) else key


def _rollout_peak(w: _Workload, key: str, live: Objects) -> Decimal:
    """The most a workload counts against `key` while its new template rolls out: old and new pods together
    never pass replicas + maxSurge, so the peak is at one end of that path."""
    old, new, pods = _pod_value(key, w.containers_now, live), _pod_value(key, w.containers_after, live), w.most_pods
    return max(pods * new, pods * old + w.surge * new, w.surge * old + pods * new)


def _quota_findings(workloads: Sequence[_Workload], live: Objects) -> list[Finding]:
    findings = []
    touched = [w for w in workloads if w.touched]
    rolling = ", ".join(f"{w.ref} {w.surge}" for w in touched if w.surge)
    for quota in _of_kind(live, "ResourceQuota"):
        obj = f"resourcequota/{_name(quota)}"
        hard = _mapping(_mapping(quota.get("spec")).get("hard"))
        used = _mapping(_mapping(quota.get("status")).get("used"))
        for key, limit_text in sorted(hard.items()):
            limit = _quantity(limit_text)
            if limit is None or _per_pod(key, {}) is None or \
                    (key != "pods" and resource_name_problem(_resource_of(key)) is not None):
                continue
            counted = _quantity(used.get(key))
            before = counted if counted is not None else \
                sum((w.replicas_now * _pod_value(key, w.containers_now, live) for w in workloads), Decimal(0))
            after = before + sum((w.most_pods * _pod_value(key, w.containers_after, live)
                                  - w.replicas_now * _pod_value(key, w.containers_now, live) for w in touched),
                                 Decimal(0))
            during = before + sum((_rollout_peak(w, key, live)
                                   - w.replicas_now * _pod_value(key, w.containers_now, live) for w in touched),
                                  Decimal(0))
            resource = _resource_of(key)
            if after > limit and after > before:
                findings.append(Finding(obj, key, (
                    f"{obj}: {key} {_show(before, resource)} of {_show(limit, resource)} → {_show(after, resource)} "
                    f"of {_show(limit, resource)} after the plan (HPA-managed workloads at their maxReplicas); "
                    "pods beyond the quota will be refused")))
            elif during > limit and during > before:
                findings.append(Finding(obj, key, (
                    f"{obj}: {key} {_show(before, resource)} of {_show(limit, resource)} → {_show(during, resource)} "
                    f"of {_show(limit, resource)} during the rollout (old and new pods side by side, maxSurge "
                    f"{rolling}); the surge pods will be refused and the rollout will stall")))
    return findings


# --- PodDisruptionBudget -------------------------------------------------------------------------------------


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a pod template's labels; an empty one
    selects every pod (policy/v1)."""
    for key, value in _mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    expressions = selector.get("matchExpressions")
    for raw in expressions if isinstance(expressions, list) else ():
        term = _mapping(raw)
        label, operator = str(term.get("key")), term.get("operator")
        found = term.get("values")
        values = found if isinstance(found, list) else []
        present = label in labels
        if operator == "In" and not (present and labels[label] in values):
            return False
        if operator == "NotIn" and present and labels[label] in values:
            return False
        if (operator == "Exists") != present and operator in ("Exists", "DoesNotExist"):
            return False
    return True


def _desired_healthy(spec: Mapping[str, Any], expected: int) -> tuple[int, str] | None:
    """(pods that must stay healthy, the rule as written) for `expected` pods; None without a rule."""
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    if high is not None:
        unavailable = math.ceil(expected * int(high[:-1]) / 100) if isinstance(high, str) and high.endswith("%") \
            else _int(high, 0)
        return max(expected - unavailable, 0), f"maxUnavailable {high}"
    if low is None:
        return None
    if isinstance(low, str) and low.endswith("%"):
        return math.ceil(expected * int(low[:-1]) / 100), f"minAvailable {low}"
    return _int(low, 0), f"minAvailable {low}"


def _pdb_findings(workloads: Sequence[_Workload], live: Objects) -> list[Finding]:
    findings = []
    for pdb in _of_kind(live, "PodDisruptionBudget"):
        spec = _mapping(pdb.get("spec"))
        selected = [w for w in workloads if _selects(_mapping(spec.get("selector")), w.labels)]
        changed = [w for w in selected if w.touched and w.settled_pods != w.replicas_now]
        if not changed:
            continue
        before = sum(w.replicas_now for w in selected)
        after = sum(w.settled_pods if w.touched else w.replicas_now for w in selected)
        rule = _desired_healthy(spec, after)
        if rule is None or after == 0:
            continue
        desired, written = rule
        obj, refs = f"poddisruptionbudget/{_name(pdb)}", ", ".join(w.ref for w in changed)
        if after < desired:
            findings.append(Finding(obj, "minAvailable", (
                f"{obj}: {refs} goes to {after} pod{'s' if after != 1 else ''} (from {before}), below its "
                f"{written}; no pod may be evicted and node drains will block")))
        elif after == desired:
            findings.append(Finding(obj, written.split()[0], (
                f"{obj}: {refs} goes to {after} pod{'s' if after != 1 else ''} (from {before}), which under its "
                f"{written} leaves 0 allowed disruptions; node drains will block")))
    return findings


# --- HPA -----------------------------------------------------------------------------------------------------


def _hpa_findings(workloads: Sequence[_Workload], live: Objects) -> list[Finding]:
    findings = []
    for w in workloads:
        if not w.touched or w.hpa_after is None:
            continue
        name, low, high = w.hpa_after
        obj = f"hpa/{name}"
        if w.scaled is not None and not low <= w.scaled <= high:
            findings.append(Finding(obj, "bounds", (
                f"{obj}: the plan sets {w.ref} to {w.scaled} replicas, outside the HPA's bounds {low}-{high}; the HPA "
                f"will move it to {min(max(w.scaled, low), high)}")))
        for quota in _of_kind(live, "ResourceQuota"):
            hard = _quantity(_mapping(_mapping(quota.get("spec")).get("hard")).get("pods"))
            used = _quantity(_mapping(_mapping(quota.get("status")).get("used")).get("pods"))
            if hard is None:
                continue
            others = (used if used is not None else sum((Decimal(x.replicas_now) for x in workloads), Decimal(0))) \
                - w.replicas_now
            room = max(hard - others, Decimal(0))
            if low > room:
                findings.append(Finding(obj, "minReplicas", (
                    f"{obj}: minReplicas {low} for {w.ref} is above the {room} pods resourcequota/{_name(quota)} "
                    f"leaves it (pods hard {hard}, {others} used by other pods)")))
    return findings


def unread_item(resources: Sequence[str]) -> dict[str, Any]:
    """What a live read that was Forbidden to list `resources` (policy objects) puts among the objects."""
    return {"kind": UNREAD_KIND, "resources": list(resources)}


def _unread_findings(plan: Plan, live: Objects) -> list[Finding]:
    unread = [str(name) for item in live if item.get("kind") == UNREAD_KIND for name in item.get("resources") or ()
              if name in POLICY_RESOURCES]
    if not unread:
        return []
    return [Finding("rbac", "unread", (
        f"the policy checks could not list {', '.join(unread)} in namespace {plan.namespace} (Forbidden): apply "
        "deployments/rbac.yaml there again; the checks of what could be read ran"))]


def findings_for(plan: Plan, live: Objects) -> list[Finding]:
    """Every policy finding about `plan` once applied, from the live read of its namespace (first, that some
    policy objects could not be read: unchecked is not the same as allowed)."""
    workloads = _workloads(plan, live)
    result = _unread_findings(plan, live) + _quota_findings(workloads, live)
    for workload in workloads:
        if workload.touched and workload.creates_pods:
            result += _limit_range_findings(workload, live)
    result += _pdb_findings(workloads, live)
    result += _hpa_findings(workloads, live)
    return result


def refusal(findings: Sequence[Finding], mode: PolicyMode) -> str | None:
    """With `block`, the reason the apply refuses (the first finding, and how many more); else None."""
    if mode is not PolicyMode.BLOCK or not findings:
        return None
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"policy: {findings[0].text}{more}"
