"""Deployment, StatefulSet and HPA controllers, reduced to what a rollback tool can observe.

* Deployment: one ReplicaSet per distinct pod template, named ``<name>-<pod-template-hash>``; a ReplicaSet
  whose template matches semantically is reused (undo) with its revision raised to max+1 and the old number
  appended to ``revision-history``; scaling changes replica counts only. Status goes "pending" immediately and
  "complete" after ``rollout_delay`` seconds, or ``ProgressDeadlineExceeded`` when the deployment is stuck
  (annotation ``sandbox.infra/stuck: "true"`` or :meth:`Controllers.set_stuck`).
* StatefulSet: status follows spec after the same delay.
* HPA: keeps the target's ``spec.replicas`` within [minReplicas, maxReplicas] after ``hpa_delay`` seconds, and
  is disabled (``ScalingActive=False``) while the target is scaled to 0.

Controllers run synchronously inside store listeners (so a write's ReplicaSets exist when the request returns)
and defer only the timed parts to the :class:`~sandbox.kube.scheduler.Scheduler`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from .discovery import ResourceType, lookup
from .scheduler import Scheduler
from .store import Event, Obj, Store, now_iso

DEPLOY = lookup("deployments")
RS = lookup("replicasets")
STS = lookup("statefulsets")
HPA = lookup("horizontalpodautoscalers")
NAMESPACE = lookup("namespaces")

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HASH_LABEL = "pod-template-hash"
MAX_REVISION_HISTORY_CHARS = 2000
STUCK_ANNOTATION = "sandbox.infra/stuck"
SKIP_COPY = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
)
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _prune(value: Any) -> Any:
    """Drop null and empty values recursively: the "semantic" view of a template."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def normalize_template(template: Any) -> Any:
    """Template without ``pod-template-hash`` and empty values, for semantic comparison."""
    t = copy.deepcopy(template) if isinstance(template, dict) else {}
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _prune(t)


def _template_key(template: Any) -> str:
    return json.dumps(normalize_template(template), sort_keys=True, separators=(",", ":"))


def _needs_sync(ev: Event) -> bool:
    """Skip the deployment sync for writes that changed neither spec, annotations nor generation
    (the controller's own status updates), which is most of them."""
    if ev.old is None:
        return True
    old_meta, new_meta = ev.old.get("metadata") or {}, ev.obj.get("metadata") or {}
    return (
        ev.old.get("spec") != ev.obj.get("spec")
        or old_meta.get("annotations") != new_meta.get("annotations")
        or old_meta.get("generation") != new_meta.get("generation")
    )


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(normalize_template(template), sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def _revision(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) else 1


def set_condition(status: dict[str, Any], ctype: str, value: str, reason: str, message: str) -> None:
    """Set a condition, keeping its timestamps when nothing about it changed (so no-op syncs don't write)."""
    conds = status.get("conditions")
    if not isinstance(conds, list) or not all(isinstance(c, dict) for c in conds):
        conds = status["conditions"] = []
    now = now_iso()
    for c in conds:
        if c.get("type") == ctype:
            if (c.get("status"), c.get("reason"), c.get("message")) != (value, reason, message):
                if c.get("status") != value:
                    c["lastTransitionTime"] = now
                c.update(status=value, reason=reason, message=message, lastUpdateTime=now)
            return
    conds.append(
        {
            "type": ctype,
            "status": value,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )


def _max_surge(d: Obj, replicas: int) -> int:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = ru.get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        try:
            return math.ceil(replicas * float(surge[:-1]) / 100)
        except ValueError:
            return 0
    return surge if isinstance(surge, int) else 0


class Controllers:
    """All controllers of one sandbox server, wired to its store."""

    def __init__(self, store: Store, rollout_delay: float = 0.05, hpa_delay: float = 0.05) -> None:
        self.store = store
        self.rollout_delay = rollout_delay
        self.hpa_delay = hpa_delay
        self.scheduler = Scheduler(store.lock)
        self._stuck: set[tuple[str, str]] = set()
        self._hpa_pending: set[str] = set()
        self._rs_of: dict[tuple[str, str], str] = {}  # deployment -> ReplicaSet of its current template
        self._key_cache: dict[tuple[str, str], str] = {}  # (RS uid, resourceVersion) -> template key
        store.add_listener(self._on_event)

    # --- public knobs ----------------------------------------------------------------------------------

    def set_stuck(self, namespace: str, name: str, stuck: bool = True) -> None:
        """Make a deployment's rollouts never finish (ending in ProgressDeadlineExceeded) or finish again."""
        with self.store.lock:
            if stuck:
                self._stuck.add((namespace, name))
            else:
                self._stuck.discard((namespace, name))
            d = self.store.get(DEPLOY, namespace, name)
            if d is not None:
                self._schedule_complete(namespace, name, int(d["metadata"].get("generation", 1)))

    def settle(self, timeout_s: float = 5.0) -> bool:
        return self.scheduler.settle(timeout_s)

    def stop(self) -> None:
        self.scheduler.stop()

    # --- dispatch --------------------------------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        meta = ev.obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        key = ev.resource.key
        if key == DEPLOY.key and ev.type != "DELETED" and _needs_sync(ev):
            self.sync_deployment(ns, name)
        elif key == STS.key and ev.type != "DELETED":
            self.sync_statefulset(ns, name)
        if key == HPA.key or (key in (DEPLOY.key, STS.key, RS.key) and ev.type != "DELETED"):
            self._schedule_hpa(ns)
        if key == "namespaces" and ev.type == "MODIFIED" and meta.get("deletionTimestamp"):
            self.scheduler.schedule(self.rollout_delay, lambda: self._finalize_namespace(name))

    # --- namespaces ------------------------------------------------------------------------------------

    def _finalize_namespace(self, name: str) -> None:
        """Namespace controller: a Terminating namespace goes away with everything in it."""
        ns = self.store.get(NAMESPACE, "", name)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            self.store.delete(NAMESPACE, "", name)

    # --- deployments -----------------------------------------------------------------------------------

    def _rs_template_key(self, rs: Obj) -> str:
        """Semantic template key of a ReplicaSet, cached per object version (sync runs on every write)."""
        meta = rs["metadata"]
        cache_key = (meta["uid"], meta["resourceVersion"])
        key = self._key_cache.get(cache_key)
        if key is None:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            key = self._key_cache[cache_key] = _template_key(rs["spec"].get("template"))
        return key

    def _is_stuck(self, d: Obj) -> bool:
        meta = d["metadata"]
        ann = meta.get("annotations") or {}
        return ann.get(STUCK_ANNOTATION) == "true" or (meta.get("namespace", ""), meta["name"]) in self._stuck

    def _owned(self, d: Obj) -> list[Obj]:
        uid = d["metadata"]["uid"]
        items, _ = self.store.list(RS, d["metadata"].get("namespace", ""), copy_items=False)
        return [
            rs
            for rs in items
            if any(r.get("uid") == uid and r.get("controller") for r in rs["metadata"].get("ownerReferences", []))
        ]

    def sync_deployment(self, ns: str, name: str) -> None:
        d = self.store.get(DEPLOY, ns, name)
        if d is None:
            return
        spec = d.get("spec") or {}
        template = spec.get("template") or {}
        replicas = _replicas(d)
        owned = self._owned(d)
        want = _template_key(template)
        current = next((rs for rs in owned if self._rs_template_key(rs) == want), None)
        olds = [rs for rs in owned if current is None or rs["metadata"]["uid"] != current["metadata"]["uid"]]
        max_old = max((_revision(rs) for rs in olds), default=0)
        if current is None and spec.get("paused"):
            # a paused deployment observes its new template but rolls nothing out until resumed
            raw = d.get("status")
            status: dict[str, Any] = raw if isinstance(raw, dict) else {}
            gen = int(d["metadata"].get("generation", 1))
            if status.get("observedGeneration") != gen:
                d["status"] = {**status, "observedGeneration": gen}
                set_condition(d["status"], "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
                self.store.update(DEPLOY, d, check_rv=False)
            return
        new_rev = max_old + 1
        ann_src = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in SKIP_COPY}
        rs_ann_extra = {DESIRED: str(replicas), MAX_REPLICAS: str(replicas + _max_surge(d, replicas))}
        if current is None:
            current = self._create_rs(d, template, new_rev, {**ann_src, **rs_ann_extra})
        else:
            rs = copy.deepcopy(current)
            ann = rs["metadata"].setdefault("annotations", {})
            old_rev = _revision(rs)
            if old_rev < new_rev:
                ann[REVISION] = str(new_rev)
                if old_rev:
                    hist = ann.get(REVISION_HISTORY)
                    entries = [*(hist.split(",") if hist else []), str(old_rev)]
                    while len(",".join(entries)) > MAX_REVISION_HISTORY_CHARS and len(entries) > 1:
                        entries.pop(0)  # the controller's own cap, as in kube-controller-manager
                    ann[REVISION_HISTORY] = ",".join(entries)
            else:
                new_rev = old_rev
            ann.update(ann_src)
            ann.update(rs_ann_extra)
            rs["spec"]["replicas"] = replicas
            current = self.store.update(RS, rs, check_rv=False)
        for old in olds:
            if old["spec"].get("replicas") != 0:
                old = copy.deepcopy(old)
                old["spec"]["replicas"] = 0
                old["status"] = {"replicas": 0, "observedGeneration": old["metadata"].get("generation", 1)}
                self.store.update(RS, old, check_rv=False)
        self._cleanup_history(d, olds)

        d = self.store.require(DEPLOY, ns, name)
        d["metadata"].setdefault("annotations", {})[REVISION] = str(new_rev)
        gen = int(d["metadata"].get("generation", 1))
        status = d.setdefault("status", {})
        if status.get("observedGeneration") != gen:
            template_changed = self._rs_of.get((ns, name)) != current["metadata"]["name"]
            self._rs_of[(ns, name)] = current["metadata"]["name"]
            self._pending_status(d, replicas, template_changed, current["metadata"]["name"])
            self._schedule_complete(ns, name, gen)
        self.store.update(DEPLOY, d, check_rv=False)

    def _create_rs(self, d: Obj, template: Obj, revision: int, annotations: dict[str, str]) -> Obj:
        meta = d["metadata"]
        h = template_hash(template)
        tmpl = copy.deepcopy(template)
        tmeta = tmpl.setdefault("metadata", {})
        tmeta.setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        annotations = {**annotations, REVISION: str(revision)}
        name = f"{meta['name']}-{h}"
        n = 0
        while self.store.get(RS, meta.get("namespace", ""), name) is not None:
            n += 1
            name = f"{meta['name']}-{h}{n}"
        rs = {
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace", ""),
                "labels": dict(tmeta["labels"]),
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"replicas": _replicas(d), "selector": selector, "template": tmpl},
            "status": {"replicas": 0},
        }
        return self.store.create(RS, rs)

    def _cleanup_history(self, d: Obj, olds: list[Obj]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        if not isinstance(limit, int) or limit < 0:
            return
        olds_sorted = sorted(olds, key=_revision)
        excess = len(olds_sorted) - limit
        for rs in olds_sorted[: max(excess, 0)]:
            self.store.delete(RS, rs["metadata"].get("namespace", ""), rs["metadata"]["name"])

    def _pending_status(self, d: Obj, replicas: int, template_changed: bool, rs_name: str) -> None:
        status = d["status"]
        prev_updated = status.get("updatedReplicas", 0) or 0
        prev_avail = status.get("availableReplicas", 0) or 0
        updated = 0 if template_changed else min(prev_updated, replicas)
        avail = min(prev_avail, replicas)
        status.update(
            observedGeneration=int(d["metadata"].get("generation", 1)),
            replicas=max(replicas, status.get("replicas", 0) or 0) if template_changed else replicas,
            updatedReplicas=updated,
            readyReplicas=avail,
            availableReplicas=avail,
            unavailableReplicas=max(replicas - avail, 0),
        )
        if replicas == 0:
            status.update(replicas=0, updatedReplicas=0, readyReplicas=0, availableReplicas=0, unavailableReplicas=0)
        set_condition(status, "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        if not any(c.get("type") == "Available" for c in status.get("conditions", [])):
            set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )

    def _schedule_complete(self, ns: str, name: str, gen: int) -> None:
        self.scheduler.schedule(self.rollout_delay, lambda: self._complete(ns, name, gen))

    def _complete(self, ns: str, name: str, gen: int) -> None:
        d = self.store.get(DEPLOY, ns, name)
        if d is None or int(d["metadata"].get("generation", 1)) != gen:
            return
        status = d.setdefault("status", {})
        rs_name = self._rs_of.get((ns, name), "")
        if self._is_stuck(d):
            set_condition(
                status,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
            self.store.update(DEPLOY, d, check_rv=False)
            return
        replicas = _replicas(d)
        status.update(
            replicas=replicas,
            updatedReplicas=replicas,
            readyReplicas=replicas,
            availableReplicas=replicas,
            observedGeneration=gen,
        )
        status.pop("unavailableReplicas", None)
        set_condition(status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        set_condition(
            status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
        self.store.update(DEPLOY, d, check_rv=False)
        for rs in map(copy.deepcopy, self._owned(d)):
            n = rs["spec"].get("replicas", 0)
            rs["status"] = {
                "replicas": n,
                "fullyLabeledReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
            if not n:
                rs["status"] = {"replicas": 0, "observedGeneration": rs["metadata"].get("generation", 1)}
            self.store.update(RS, rs, check_rv=False)

    # --- statefulsets ----------------------------------------------------------------------------------

    def sync_statefulset(self, ns: str, name: str) -> None:
        s = self.store.get(STS, ns, name)
        if s is None:
            return
        gen = int(s["metadata"].get("generation", 1))
        status = s.setdefault("status", {})
        if status.get("observedGeneration") == gen:
            return
        replicas = _replicas(s)
        rev = f"{name}-{template_hash((s.get('spec') or {}).get('template'))}"
        ready = min(status.get("readyReplicas", 0) or 0, replicas)
        status.update(
            observedGeneration=gen,
            replicas=replicas,
            readyReplicas=ready,
            availableReplicas=ready,
            currentReplicas=ready,
            updatedReplicas=0,
            updateRevision=rev,
            currentRevision=status.get("currentRevision", rev),
            collisionCount=0,
        )
        self.store.update(STS, s, check_rv=False)

        def complete() -> None:
            cur = self.store.get(STS, ns, name)
            if cur is None or int(cur["metadata"].get("generation", 1)) != gen:
                return
            n = _replicas(cur)
            cur.setdefault("status", {}).update(
                replicas=n,
                readyReplicas=n,
                availableReplicas=n,
                currentReplicas=n,
                updatedReplicas=n,
                currentRevision=rev,
                updateRevision=rev,
                observedGeneration=gen,
            )
            self.store.update(STS, cur, check_rv=False)

        self.scheduler.schedule(self.rollout_delay, complete)

    # --- horizontal pod autoscalers --------------------------------------------------------------------

    def _schedule_hpa(self, ns: str) -> None:
        if ns in self._hpa_pending:
            return
        self._hpa_pending.add(ns)

        def run() -> None:
            self._hpa_pending.discard(ns)
            self.sync_hpas(ns)

        self.scheduler.schedule(self.hpa_delay, run)

    def sync_hpas(self, ns: str) -> None:
        hpas, _ = self.store.list(HPA, ns)
        for hpa in hpas:
            self._sync_hpa(hpa)

    def _target(self, ns: str, ref: dict[str, Any]) -> tuple[ResourceType, Obj] | None:
        try:
            rt = lookup(str(ref.get("kind", "")))
        except KeyError:
            return None
        if rt.key not in (DEPLOY.key, STS.key, RS.key):
            return None
        obj = self.store.get(rt, ns, str(ref.get("name", "")))
        return (rt, obj) if obj is not None else None

    def _sync_hpa(self, hpa: Obj) -> None:
        ns = hpa["metadata"].get("namespace", "")
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        status = hpa.setdefault("status", {})
        lo = spec.get("minReplicas", 1)
        hi = spec.get("maxReplicas", lo)
        lo = lo if isinstance(lo, int) else 1
        hi = hi if isinstance(hi, int) else lo
        found = self._target(ns, ref)
        if found is None:
            set_condition(
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
        cur = _replicas(target)
        set_condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        if cur == 0 and lo > 0:
            set_condition(
                status,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            status.update(currentReplicas=0, desiredReplicas=0)
            self.store.update(HPA, hpa, check_rv=False)
            return
        desired = min(max(cur, lo), hi)
        set_condition(
            status,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count",
        )
        if desired != cur:
            reason = "TooFewReplicas" if desired > cur else "TooManyReplicas"
            set_condition(
                status,
                "ScalingLimited",
                "True",
                reason,
                f"the desired replica count is {'less' if desired > cur else 'more'} than the "
                f"{'minimum' if desired > cur else 'maximum'} replica count",
            )
            target["spec"]["replicas"] = desired
            self.store.update(rt, target, check_rv=False)
            status["lastScaleTime"] = now_iso()
        else:
            set_condition(
                status,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        status.update(currentReplicas=cur, desiredReplicas=desired)
        self.store.update(HPA, hpa, check_rv=False)
