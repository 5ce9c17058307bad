"""The HorizontalPodAutoscaler controller, as kube-controller-manager's ``podautoscaler`` computes replicas.

* A target outside [minReplicas, maxReplicas] is brought inside at once (``ScalingLimited``); a target scaled to
  0 disables the HPA (``ScalingActive=False``).
* Within the bounds it scales on a simulated CPU metric, per HPA, set through :meth:`HpaController.set_metric`
  (``POST /_sandbox/metrics``): the average utilisation observed *now*. The load behind it is kept, so after a
  scale the utilisation is ``load / replicas``. Desired replicas are ``ceil(current * utilisation / target)``,
  unchanged within the 10 % tolerance, then stabilised and rate limited like ``normalizeDesiredReplicasWithBehaviors``:
  the highest recommendation of the scale-down stabilisation window (``behavior.scaleDown
  .stabilizationWindowSeconds``, else ``downscale_stabilization``, default 300 s), the lowest of the scale-up
  window (default 0), and the ``behavior`` policies (defaults: up by max(4 pods, 100 %) per 15 s, down by
  100 % per 15 s).
* It syncs an HPA ``hpa_delay`` after a change to it, its target or its metric (the HPAs asked for meanwhile in
  one pass), and again every ``sync_period`` (default 15 s) while a window or a policy holds a recommendation
  back.
"""

from __future__ import annotations

import math
from typing import Any

from .autoscaling import DEFAULT_CPU_UTILIZATION, SCALE_DOWN_DEFAULT, SCALE_UP_DEFAULT
from .conditions import set_condition as _condition
from .discovery import ResourceType, lookup
from .scheduler import Scheduler
from .store import Event, Obj, Store, now_iso

DEPLOY = lookup("deployments")
RS = lookup("replicasets")
STS = lookup("statefulsets")
HPA = lookup("horizontalpodautoscalers")
TOLERANCE = 0.1


def cpu_target(spec: dict[str, Any]) -> int:
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {} if isinstance(metric, dict) else {}
        if resource.get("name") == "cpu":
            value = (resource.get("target") or {}).get("averageUtilization")
            if isinstance(value, int) and value > 0:
                return value
    return DEFAULT_CPU_UTILIZATION


def _rules(spec: dict[str, Any], direction: str) -> dict[str, Any]:
    behavior = spec.get("behavior") or {}
    given = behavior.get(direction) if isinstance(behavior, dict) else None
    default = SCALE_UP_DEFAULT if direction == "scaleUp" else SCALE_DOWN_DEFAULT
    return {**default, **given} if isinstance(given, dict) else dict(default)


def _policy_limit(rules: dict[str, Any], current: int, events: list[tuple[float, int]], now: float, up: bool) -> int:
    """The furthest the rules let replicas go from ``current``, given the scale events (time, change) so far."""
    if rules.get("selectPolicy") == "Disabled":
        return current
    proposals = []
    for policy in rules.get("policies") or []:
        period = int(policy.get("periodSeconds", 15))
        changed = sum(delta for at, delta in events if at > now - period and (delta > 0) == up)
        start = current - changed
        value = int(policy.get("value", 0))
        if policy.get("type") == "Pods":
            proposals.append(start + value if up else start - value)
        else:
            proposals.append(math.ceil(start * (1 + value / 100)) if up else int(start * (1 - value / 100)))
    if not proposals:
        return current
    pick_widest = rules.get("selectPolicy", "Max") == "Max"
    if up:
        return max(proposals) if pick_widest else min(proposals)
    return min(proposals) if pick_widest else max(proposals)


class HpaController:
    def __init__(
        self, store: Store, scheduler: Scheduler, delay: float, sync_period: float, downscale_stabilization: float
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.delay = delay
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self._pending: set[tuple[str, str]] = set()  # HPAs (namespace, name) to sync at the next flush
        self._flush_armed = False
        # target (namespace, resource key, name) -> the HPAs scaling it, so a workload change syncs only those
        self._by_target: dict[tuple[str, str, str], set[str]] = {}
        self._target_of: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._load: dict[tuple[str, str], float] = {}  # HPA -> utilisation x replicas (the simulated load)
        self._recommendations: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self._events: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self._resync_armed: set[tuple[str, str]] = set()

    def on_event(self, ev: Event) -> None:
        """Resync an HPA on any write to it, and the HPAs targeting a workload on a change of its spec."""
        key = ev.resource.key
        meta = ev.obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if key == HPA.key:
            self._index(ns, name, None if ev.type == "DELETED" else ev.obj)
            if ev.type != "DELETED":
                self.schedule((ns, name))
        elif (
            key in (DEPLOY.key, STS.key, RS.key)
            and ev.type != "DELETED"
            and (ev.old is None or ev.old.get("spec") != ev.obj.get("spec"))
        ):
            for hpa in sorted(self._by_target.get((ns, key, name), ())):
                self.schedule((ns, hpa))

    def _index(self, ns: str, name: str, hpa: Obj | None) -> None:
        """Keep the target -> HPAs index current for an HPA written (or deleted: ``hpa`` None)."""
        previous = self._target_of.pop((ns, name), None)
        if previous is not None:
            self._by_target[previous].discard(name)
            if not self._by_target[previous]:
                del self._by_target[previous]
        ref = ((hpa or {}).get("spec") or {}).get("scaleTargetRef") or {}
        try:
            rt = lookup(str(ref.get("kind", "")))
        except KeyError:
            return
        if hpa is not None and rt.key in (DEPLOY.key, STS.key, RS.key):
            target = (ns, rt.key, str(ref.get("name", "")))
            self._target_of[(ns, name)] = target
            self._by_target.setdefault(target, set()).add(name)

    def set_metric(self, namespace: str, name: str, utilization: float) -> None:
        """Observe an average CPU utilisation (percent of requests) for an HPA's target at its current size."""
        with self.store.lock:
            hpa = self.store.get(HPA, namespace, name)
            if hpa is None:
                raise KeyError(f"horizontalpodautoscaler {namespace}/{name} not found")
            found = self._target(namespace, (hpa.get("spec") or {}).get("scaleTargetRef") or {})
            replicas = max(int((found[1].get("spec") or {}).get("replicas", 1)), 1) if found else 1
            self._load[(namespace, name)] = utilization * replicas
            self.schedule((namespace, name))

    def schedule(self, hpa: tuple[str, str]) -> None:
        """Sync ``hpa`` ``delay`` from now, with every other HPA asked for meanwhile (one flush, not a sweep of
        the namespace per write: a sweep holds the store lock that API requests wait for)."""
        self._pending.add(hpa)
        if self._flush_armed:
            return
        self._flush_armed = True

        def flush() -> None:
            self._flush_armed = False
            pending, self._pending = sorted(self._pending), set()
            for ns, name in pending:
                self.sync(ns, name)

        self.scheduler.schedule(self.delay, flush)

    def sync(self, ns: str, name: str) -> None:
        hpa = self.store.get(HPA, ns, name)
        if hpa is not None:
            self._sync_one(hpa)

    def _target(self, ns: str, ref: dict[str, Any]) -> tuple[ResourceType, Obj] | None:
        try:
            rt = lookup(str(ref.get("kind", "")))
        except KeyError:
            return None
        if rt.key not in (DEPLOY.key, STS.key, RS.key):
            return None
        obj = self.store.get(rt, ns, str(ref.get("name", "")))
        return (rt, obj) if obj is not None else None

    def _recommend(self, key: tuple[str, str], spec: dict[str, Any], current: int, lo: int, hi: int) -> int | None:
        """Replicas the metric asks for, stabilised and rate limited; None without a metric."""
        load = self._load.get(key)
        if load is None:
            return None
        target = cpu_target(spec)
        utilization = load / max(current, 1)
        wanted = current if abs(utilization / target - 1) <= TOLERANCE else math.ceil(load / target)
        now = self.scheduler.now()
        up, down = _rules(spec, "scaleUp"), _rules(spec, "scaleDown")
        up_window = float(up.get("stabilizationWindowSeconds") or 0)
        down_raw = down.get("stabilizationWindowSeconds")
        down_window = float(down_raw) if isinstance(down_raw, int) else self.downscale_stabilization
        history = [r for r in self._recommendations.get(key, []) if r[0] > now - max(up_window, down_window)]
        history.append((now, wanted))
        self._recommendations[key] = history
        up_rec = min([wanted, *(r for at, r in history if at > now - up_window)])
        down_rec = max([wanted, *(r for at, r in history if at > now - down_window)])
        desired = min(max(current, up_rec), down_rec)
        events = [e for e in self._events.get(key, []) if e[0] > now - 1800]
        if desired > current:
            desired = min(desired, _policy_limit(up, current, events, now, True), hi)
        elif desired < current:
            desired = max(desired, _policy_limit(down, current, events, now, False), lo)
        if min(max(wanted, lo), hi) != desired and key not in self._resync_armed:
            self._resync_armed.add(key)  # a window or policy held the change back: look again next period

            def resync() -> None:
                self._resync_armed.discard(key)
                self.sync(*key)

            self.scheduler.schedule(self.sync_period, resync, timer=True)
        return desired

    def _sync_one(self, hpa: Obj) -> None:
        meta = hpa["metadata"]
        ns = meta.get("namespace", "")
        key = (ns, meta["name"])
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        status = hpa.setdefault("status", {})
        lo = spec.get("minReplicas", 1)
        hi = spec.get("maxReplicas", lo)
        lo = lo if isinstance(lo, int) else 1
        hi = hi if isinstance(hi, int) else lo
        found = self._target(ns, ref)
        if found is None:
            _condition(
                status,
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: "
                f'{str(ref.get("kind", "")).lower()}s "{ref.get("name", "")}" not found',
            )
            self.store.update(HPA, hpa, check_rv=False)
            return
        rt, target = found
        cur = int((target.get("spec") or {}).get("replicas", 1))
        _condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        if cur == 0 and lo > 0:
            _condition(
                status,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            status.update(currentReplicas=0, desiredReplicas=0)
            self.store.update(HPA, hpa, check_rv=False)
            return
        recommended = None if cur < lo or cur > hi else self._recommend(key, spec, cur, lo, hi)
        desired = min(max(cur, lo), hi) if recommended is None else recommended
        _condition(
            status,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count",
        )
        if cur < lo or cur > hi:
            too_few = cur < lo
            _condition(
                status,
                "ScalingLimited",
                "True",
                "TooFewReplicas" if too_few else "TooManyReplicas",
                f"the desired replica count is {'less' if too_few else 'more'} than the "
                f"{'minimum' if too_few else 'maximum'} replica count",
            )
        else:
            _condition(
                status,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        if desired != cur:
            target["spec"]["replicas"] = desired
            self.store.update(rt, target, check_rv=False)
            self._events.setdefault(key, []).append((self.scheduler.now(), desired - cur))
            status["lastScaleTime"] = now_iso()
        load = self._load.get(key)
        if load is not None:
            status["currentMetrics"] = [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": round(load / max(desired, 1))}},
                }
            ]
        status.update(currentReplicas=cur, desiredReplicas=desired)
        self.store.update(HPA, hpa, check_rv=False)
