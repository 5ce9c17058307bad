"""ResourceQuota, LimitRange (v1) and PodDisruptionBudget (policy/v1): validation, defaults, the quota and
disruption controllers' status, and the LimitRanger and ResourceQuota admission of pods.

* Admission (every pod create, from a client or a ReplicaSet / StatefulSet): LimitRanger first fills a
  container's missing requests and limits from the `Container` items' `defaultRequest` / `default`, then refuses
  (403) a container outside `min`, `max` or `maxLimitRequestRatio`; ResourceQuota then refuses (403) a pod that
  would take `requests.*`, `limits.*`, `cpu`, `memory` or `pods` past a quota's `hard`, or that leaves a tracked
  compute resource unset, in kube-apiserver's words. A ReplicaSet whose pods are refused reports
  `ReplicaFailure` / `FailedCreate` and tries again when a quota changes or a pod of its namespace goes away.
* Status: a quota's `status.hard` is its `spec.hard`, `status.used` the sum over the namespace's non-terminal
  pods of what it tracks; a PDB's `expectedPods`, `currentHealthy`, `desiredHealthy` and `disruptionsAllowed`
  count the pods its selector matches (the real controller takes `expectedPods` from the pods' controllers'
  scale; with every pod created the two agree).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import quantity
from .discovery import lookup
from .errors import ApiError, bad_request
from .selectors import label_selector, selector_from_match_labels
from .store import Event, Obj, Store, now_iso

QUOTA = lookup("resourcequotas")
LIMIT_RANGE = lookup("limitranges")
PDB = lookup("poddisruptionbudgets")
POD = lookup("pods")
RS = lookup("replicasets")

COMPUTE = ("cpu", "memory", "ephemeral-storage")
"""Resources a bare quota key (`cpu`) counts as the pods' requests of."""
_OBJECT_COUNTS = frozenset(
    {
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
_QUALIFIED = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PERCENT = re.compile(r"^[0-9]+%$")
_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_LIMIT_FIELDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
_TERMINAL = ("Succeeded", "Failed")
_BINARY_SUFFIX = re.compile(r"(Ki|Mi|Gi|Ti|Pi|Ei)$")
_BINARY_UNITS = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL_UNITS = (
    ("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3), ("u", -6), ("n", -9)
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def canonical(value: Decimal, binary: bool) -> str:
    """A quantity as Go's `Quantity.String()` writes it: the largest unit that keeps the value whole (`1500m`,
    `4`, `7680Mi`); binary units only for a value that came from binary ones."""
    if value == 0:
        return "0"
    if binary and value == value.to_integral_value():
        for suffix, size in _BINARY_UNITS:
            if value % size == 0:
                return f"{int(value // size)}{suffix}"
        return str(int(value))
    for suffix, exponent in _DECIMAL_UNITS:
        scaled = value.scaleb(-exponent)
        if scaled == scaled.to_integral_value():
            return f"{int(scaled)}{suffix}"
    return f"{int(value.scaleb(9).to_integral_value(rounding='ROUND_CEILING'))}n"


def _is_binary(text: Any) -> bool:
    return isinstance(text, str) and bool(_BINARY_SUFFIX.search(text))


# --- decoding, validation, defaults --------------------------------------------------------------------------


def _undecodable(kind: str) -> ApiError:
    return bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {quantity.QuantityError()}')


def check_types(obj: Obj) -> None:
    """400 for quantities and int-or-strings that Go decoding rejects."""
    kind = obj.get("kind")
    spec = _dict(obj.get("spec"))
    lists: list[Any] = []
    if kind == "ResourceQuota":
        lists = [spec.get("hard")]
    elif kind == "LimitRange":
        items = spec.get("limits")
        lists = [_dict(item).get(f) for item in (items if isinstance(items, list) else ()) for f in _LIMIT_FIELDS]
    elif kind == "PodDisruptionBudget":
        for key in ("minAvailable", "maxUnavailable"):
            value = spec.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
                raise bad_request(
                    f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                    f"PodDisruptionBudgetSpec.spec.{key} of type intstr.IntOrString"
                )
        return
    for values in lists:
        if values is not None and not isinstance(values, dict):
            raise bad_request(f"json: cannot unmarshal {type(values).__name__} into Go value of type v1.ResourceList")
        for value in _dict(values).values():
            if not quantity.is_quantity(value):
                raise _undecodable(str(kind))


def apply_defaults(obj: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's `default` from `max`, then `defaultRequest` from
    `default`, then from `min`."""
    if obj.get("kind") != "LimitRange":
        return
    items = _dict(obj.get("spec")).get("limits")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = {**_dict(item.get("max")), **_dict(item.get("default"))}
        request = {**_dict(item.get("min")), **default, **_dict(item.get("defaultRequest"))}
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def _quota_name_problem(name: str) -> str | None:
    if name in _OBJECT_COUNTS or name in COMPUTE or name.startswith("count/"):
        return None
    prefix, _, rest = name.partition(".")
    if prefix in ("requests", "limits") and rest and (rest in COMPUTE or _QUALIFIED.match(rest) or rest == "storage"):
        return None
    if _QUALIFIED.match(name):
        return None
    return "must be a standard resource for quota"


def _quota_causes(spec: dict[str, Any]) -> list[str]:
    causes = []
    for name, value in sorted(_dict(spec.get("hard")).items()):
        amount = quantity.value_of(value)
        problem = _quota_name_problem(name)
        if problem:
            causes.append(f'spec.hard[{name}]: Invalid value: "{name}": {problem}')
        if amount < 0:
            causes.append(f'spec.hard[{name}]: Invalid value: "{value}": must be greater than or equal to 0')
        elif (name in _OBJECT_COUNTS or name.startswith("count/")) and amount != amount.to_integral_value():
            causes.append(f'spec.hard[{name}]: Invalid value: "{value}": must be an integer')
    return causes


def _limit_range_causes(spec: dict[str, Any]) -> list[str]:
    items = spec.get("limits")
    if not isinstance(items, list):
        return ["spec.limits: Required value"] if items is None else []
    causes = []
    for i, raw in enumerate(items):
        item, at = _dict(raw), f"spec.limits[{i}]"
        if item.get("type") not in _LIMIT_TYPES:
            supported = ", ".join(f'"{t}"' for t in _LIMIT_TYPES)
            causes.append(f'{at}.type: Unsupported value: "{item.get("type")}": supported values: {supported}')
        values = {f: {k: quantity.value_of(v) for k, v in _dict(item.get(f)).items()} for f in _LIMIT_FIELDS}
        shown = {f: _dict(item.get(f)) for f in _LIMIT_FIELDS}
        for f, vals in values.items():
            for k, v in sorted(vals.items()):
                if v < 0:
                    causes.append(f'{at}.{f}[{k}]: Invalid value: "{shown[f][k]}": must be greater than or equal to 0')
        pairs = (
            ("min", "max", "min value {lo} is greater than max value {hi}"),
            ("default", "max", "default value {lo} is greater than max value {hi}"),
            ("defaultRequest", "max", "default request value {lo} is greater than max value {hi}"),
            ("min", "defaultRequest", "min value {lo} is greater than default request value {hi}"),
            ("defaultRequest", "default", "default request value {lo} is greater than default limit value {hi}"),
        )
        for low, high, message in pairs:
            for k, lo in sorted(values[low].items()):
                hi = values[high].get(k)
                if hi is not None and lo > hi:
                    text = message.format(lo=shown[low][k], hi=shown[high][k])
                    causes.append(f'{at}.{low}[{k}]: Invalid value: "{shown[low][k]}": {text}')
        for k, ratio in sorted(values["maxLimitRequestRatio"].items()):
            if ratio < 1:
                text = shown["maxLimitRequestRatio"][k]
                causes.append(f'{at}.maxLimitRequestRatio[{k}]: Invalid value: "{text}": ratio {text} is less than 1')
    return causes


def _int_or_percent_causes(field: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, int):
        return [] if value >= 0 else [f"{field}: Invalid value: {value}: must be greater than or equal to 0"]
    if not _PERCENT.match(value):
        return [
            f'{field}: Invalid value: "{value}": a valid percent string must be a numeric string followed by an '
            "ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
        ]
    if int(value[:-1]) > 100:
        return [f'{field}: Invalid value: "{value}": must not be greater than 100%']
    return []


def _pdb_causes(spec: dict[str, Any]) -> list[str]:
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    causes = _int_or_percent_causes("spec.minAvailable", low) + _int_or_percent_causes("spec.maxUnavailable", high)
    if low is not None and high is not None:
        causes.append(
            f"spec: Invalid value: policy.PodDisruptionBudgetSpec{{MinAvailable:{low!r}, MaxUnavailable:{high!r}}}: "
            "minAvailable and maxUnavailable cannot be both set"
        )
    return causes


def causes(kind: str, obj: Obj) -> list[str]:
    """The 422 causes of a ResourceQuota, LimitRange or PodDisruptionBudget (none for other kinds)."""
    spec = _dict(obj.get("spec"))
    if kind == "ResourceQuota":
        return _quota_causes(spec)
    if kind == "LimitRange":
        return _limit_range_causes(spec)
    if kind == "PodDisruptionBudget":
        return _pdb_causes(spec)
    return []


# --- usage ---------------------------------------------------------------------------------------------------


def _containers(pod: Obj) -> list[dict[str, Any]]:
    found = _dict(pod.get("spec")).get("containers")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _resources(container: dict[str, Any], part: str) -> dict[str, Any]:
    return _dict(_dict(container.get("resources")).get(part))


def pod_usage(pod: Obj, key: str) -> tuple[Decimal, bool] | None:
    """What a pod counts against quota key `key` (and whether its units are binary); None when not a pod
    resource (object counts other than pods)."""
    if key == "pods":
        return Decimal(1), False
    part, _, name = key.partition(".")
    if key in COMPUTE:
        part, name = "requests", key
    elif part not in ("requests", "limits") or not name:
        return None
    values = [_resources(c, part).get(name) for c in _containers(pod)]
    present = [v for v in values if v is not None]
    return sum((quantity.value_of(v) for v in present), Decimal(0)), any(_is_binary(v) for v in present)


def _counted(pod: Obj) -> bool:
    return _dict(pod.get("status")).get("phase") not in _TERMINAL and not _dict(pod.get("metadata")).get(
        "deletionTimestamp"
    )


def _pods(store: Store, ns: str) -> list[Obj]:
    return [p for p in store.list(POD, ns, copy_items=False)[0] if _counted(p)]


def quota_used(hard: dict[str, Any], pods: list[Obj]) -> dict[str, str]:
    used: dict[str, str] = {}
    for key, limit in hard.items():
        total, binary = Decimal(0), _is_binary(limit)
        for pod in pods:
            usage = pod_usage(pod, key)
            if usage is None:
                break
            total += usage[0]
            binary = binary or usage[1]
        else:
            used[key] = canonical(total, binary)
    return used


# --- admission -----------------------------------------------------------------------------------------------


def _forbidden(pod: Obj, reason: str) -> ApiError:
    name = _dict(pod.get("metadata")).get("name") or _dict(pod.get("metadata")).get("generateName") or ""
    return ApiError(
        403, f'pods "{name}" is forbidden: {reason}', "Forbidden", {"name": str(name), "kind": "pods"}
    )


def _shown(value: Any) -> str:
    """A quantity as the API server's messages print it (`Quantity.String()`)."""
    return canonical(quantity.value_of(value), _is_binary(value))


def _constraint(kind: str, name: str, bound: Any, request: Any, limit: Any) -> str | None:
    """One LimitRanger constraint (`min`, `max`, `maxLimitRequestRatio`) on one resource: its first violation in
    kube-apiserver's words, or None."""
    enforced = f"{name} usage per Container is {_shown(bound)}"
    value = quantity.value_of(bound)
    if kind == "min":
        if request is None:
            return f"minimum {enforced}.  No request is specified"
        if quantity.value_of(request) < value:
            return f"minimum {enforced}, but request is {_shown(request)}"
        if limit is not None and quantity.value_of(limit) < value:
            return f"minimum {enforced}, but limit is {_shown(limit)}"
        return None
    if kind == "max":
        if limit is None:
            return f"maximum {enforced}.  No limit is specified"
        if quantity.value_of(limit) > value:
            return f"maximum {enforced}, but limit is {_shown(limit)}"
        if request is not None and quantity.value_of(request) > value:
            return f"maximum {enforced}, but request is {_shown(request)}"
        return None
    ratio = f"{name} max limit to request ratio per Container is {_shown(bound)}"
    if request is None or quantity.value_of(request) == 0:
        return f"{ratio}, but no request is specified or request is 0"
    if limit is None or quantity.value_of(limit) == 0:
        return f"{ratio}, but no limit is specified or limit is 0"
    actual = quantity.value_of(limit) / quantity.value_of(request)
    return f"{ratio}, but provided ratio is {actual:.6f}" if actual > value else None


def _limit_range_problems(item: dict[str, Any], container: dict[str, Any]) -> list[str]:
    requests, limits = _resources(container, "requests"), _resources(container, "limits")
    problems = []
    for kind in ("min", "max", "maxLimitRequestRatio"):
        for name, bound in sorted(_dict(item.get(kind)).items()):
            problem = _constraint(kind, name, bound, requests.get(name), limits.get(name))
            if problem is not None:
                problems.append(problem)
    return problems


def _limit_ranger(store: Store, ns: str, pod: Obj) -> None:
    items = [
        item
        for lr in store.list(LIMIT_RANGE, ns, copy_items=False)[0]
        for item in _dict(lr.get("spec")).get("limits") or ()
        if isinstance(item, dict) and item.get("type") == "Container"
    ]
    if not items:
        return
    problems: list[str] = []
    for container in _containers(pod):
        resources = container.setdefault("resources", {})
        for item in items:
            for part, source in (("limits", "default"), ("requests", "defaultRequest")):
                for name, value in _dict(item.get(source)).items():
                    resources.setdefault(part, {}).setdefault(name, value)
        for item in items:
            problems += _limit_range_problems(item, container)
    if problems:
        raise _forbidden(pod, problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]")


def _pretty(values: dict[str, str]) -> str:
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


def _resource_quota(store: Store, ns: str, pod: Obj) -> None:
    quotas = store.list(QUOTA, ns, copy_items=False)[0]
    if not quotas:
        return
    pods = _pods(store, ns)
    for quota in quotas:
        hard = _dict(_dict(quota.get("spec")).get("hard"))
        name = quota["metadata"]["name"]
        missing = []
        for key in sorted(hard):
            part, _, resource = key.partition(".")
            if key in ("cpu", "memory"):
                part, resource = "requests", key
            if part in ("requests", "limits") and resource in ("cpu", "memory"):
                lacking = [str(c.get("name", "")) for c in _containers(pod) if resource not in _resources(c, part)]
                if lacking:
                    missing.append(f"{part}.{resource} for: {','.join(lacking)}")
        if missing:
            raise _forbidden(pod, f"failed quota: {name}: must specify {'; '.join(missing)}")
        used = quota_used(hard, pods)
        requested = quota_used(hard, [pod])
        exceeded = [
            key
            for key in hard
            if key in requested
            and quantity.value_of(requested[key]) > 0
            and quantity.value_of(used[key]) + quantity.value_of(requested[key]) > quantity.value_of(hard[key])
        ]
        if exceeded:
            only = set(exceeded)
            raise _forbidden(
                pod,
                f"exceeded quota: {name}, requested: {_pretty({k: requested[k] for k in only})}, used: "
                f"{_pretty({k: used[k] for k in only})}, limited: "
                f"{_pretty({k: canonical(quantity.value_of(hard[k]), _is_binary(hard[k])) for k in only})}",
            )


def admit(store: Store, kind: str, obj: Obj) -> None:
    """LimitRanger (defaults, then min/max/ratio) and ResourceQuota admission of a pod about to be created."""
    if kind != "Pod":
        return
    ns = str(_dict(obj.get("metadata")).get("namespace", ""))
    _limit_ranger(store, ns, obj)
    _resource_quota(store, ns, obj)


# --- controllers ---------------------------------------------------------------------------------------------


def _desired_healthy(spec: dict[str, Any], expected: int) -> int:
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    if high is not None:
        unavailable = math.ceil(expected * int(high[:-1]) / 100) if isinstance(high, str) else int(high)
        return max(expected - unavailable, 0)
    if isinstance(low, str):
        return math.ceil(expected * int(low[:-1]) / 100)
    return int(low) if low is not None else 0


def _ready(pod: Obj) -> bool:
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in _dict(pod.get("status")).get("conditions") or ()
    )


class PolicyController:
    """Keeps quota and PDB status current, and asks ReplicaSets refused by admission to try again when room may
    have been made (`retry(namespace, name)` is the ReplicaSet controller's sync)."""

    def __init__(self, store: Store, retry: Callable[[str, str], None]) -> None:
        self.store = store
        self.retry = retry
        store.add_admission(lambda kind, obj: admit(store, kind, obj))
        store.add_listener(self._on_event)

    def _on_event(self, ev: Event) -> None:
        ns = str(_dict(ev.obj.get("metadata")).get("namespace", ""))
        key = ev.resource.key
        pod_count_changed = key == POD.key and (ev.type != "MODIFIED" or _counted(ev.obj) != _counted(ev.old or {}))
        quota_changed = key == QUOTA.key and ev.type != "DELETED" and (ev.old or {}).get("spec") != ev.obj.get("spec")
        if pod_count_changed or quota_changed:
            self._sync_quotas(ns)
        if key == POD.key or (key == PDB.key and ev.type != "DELETED"):
            self._sync_pdbs(ns)
        if (key == POD.key and ev.type == "DELETED") or quota_changed or key == LIMIT_RANGE.key:
            for rs in self.store.list(RS, ns, copy_items=False)[0]:
                if any(c.get("type") == "ReplicaFailure" for c in _dict(rs.get("status")).get("conditions") or ()):
                    self.retry(ns, rs["metadata"]["name"])

    def _sync_quotas(self, ns: str) -> None:
        quotas = self.store.list(QUOTA, ns, copy_items=False)[0]
        if not quotas:
            return
        pods = _pods(self.store, ns)
        for quota in quotas:
            hard = dict(_dict(_dict(quota.get("spec")).get("hard")))
            status = {"hard": hard, "used": quota_used(hard, pods)}
            if quota.get("status") != status:
                self.store.update(QUOTA, {**quota, "status": status}, check_rv=False)

    def _sync_pdbs(self, ns: str) -> None:
        for pdb in self.store.list(PDB, ns, copy_items=False)[0]:
            spec = _dict(pdb.get("spec"))
            selector = selector_from_match_labels(spec.get("selector"))
            matches = label_selector(selector) if selector else None
            pods = [
                p
                for p in _pods(self.store, ns)
                if matches is not None and matches(_dict(_dict(p.get("metadata")).get("labels")))
            ]
            expected, healthy = len(pods), sum(1 for p in pods if _ready(p))
            desired = _desired_healthy(spec, expected)
            allowed = max(healthy - desired, 0)
            old = _dict(pdb.get("status"))
            condition = {
                "type": "DisruptionAllowed",
                "status": "True" if allowed else "False",
                "reason": "SufficientPods" if allowed else "InsufficientPods",
                "message": "",
                "observedGeneration": pdb["metadata"].get("generation", 1),
            }
            previous = next((c for c in old.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
            same = previous is not None and all(previous.get(k) == v for k, v in condition.items())
            condition["lastTransitionTime"] = previous["lastTransitionTime"] if same and previous else now_iso()
            status = {
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "disruptionsAllowed": allowed,
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "expectedPods": expected,
                "conditions": [condition],
            }
            if old != status:
                self.store.update(PDB, {**pdb, "status": status}, check_rv=False)


def _quota_cells(limits: bool) -> Callable[[Obj], str]:
    def cell(o: Obj) -> str:
        status = _dict(o.get("status"))
        hard, used = _dict(status.get("hard")), _dict(status.get("used"))
        keys = [k for k in sorted(hard) if k.startswith("limits.") == limits]
        return ", ".join(f"{k}: {used.get(k, '0')}/{hard[k]}" for k in keys)

    return cell


def _int_or_na(field: str) -> Callable[[Obj], str]:
    return lambda o: str(_dict(o.get("spec")).get(field, "N/A"))


QUOTA_COLUMNS: list[tuple[str, str, int, Callable[[Obj], Any]]] = [
    ("Request", "string", 0, _quota_cells(False)),
    ("Limit", "string", 0, _quota_cells(True)),
]
"""`kubectl get quota`'s columns after NAME and AGE."""
PDB_COLUMNS: list[tuple[str, str, int, Callable[[Obj], Any]]] = [
    ("Min Available", "string", 0, _int_or_na("minAvailable")),
    ("Max Unavailable", "string", 0, _int_or_na("maxUnavailable")),
    ("Allowed Disruptions", "integer", 0, lambda o: _dict(o.get("status")).get("disruptionsAllowed", 0)),
]
"""`kubectl get pdb`'s columns between NAME and AGE."""
