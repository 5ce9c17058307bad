"""Deployment, ReplicaSet, StatefulSet and namespace controllers, with pods, reduced to what a rollback tool can
observe (the HPA controller is in ``hpa.py``).

* Pods: ReplicaSets and StatefulSets create and delete real ``v1/Pod`` objects. A pod becomes Ready
  ``pod_ready_delay`` seconds after it was created, unless its image matches ``broken_image`` (by default any
  tag ``broken``: ``ImagePullBackOff``), its requests do not fit the node (``node_allocatable``: Pending,
  ``Unschedulable``) or its deployment is stuck (annotation ``sandbox.infra/stuck: "true"`` or
  :meth:`Controllers.set_stuck`, the manual switch).
* Deployment: one ReplicaSet per distinct pod template, named ``<name>-<pod-template-hash>``; a ReplicaSet whose
  template matches semantically is reused (undo) with its revision raised to max+1 and the old number appended to
  ``revision-history``. RollingUpdate scales the new ReplicaSet up and the old ones down within ``maxSurge`` /
  ``maxUnavailable`` as pods become available (kube-controller-manager's ``reconcileNewReplicaSet`` /
  ``reconcileOldReplicaSets``); Recreate scales the old ones to zero first. Status and the Progressing /
  Available conditions follow the real ``syncRolloutStatus``: a rollout that makes no progress for
  ``progressDeadlineSeconds`` (``rollout_delay`` for a stuck one) turns ``Progressing=False``,
  ``ProgressDeadlineExceeded``.
* StatefulSet: pods ``<name>-<ordinal>``; RollingUpdate replaces them from the highest ordinal down, one at a
  time, each once its predecessor is Ready, honouring ``partition``; OnDelete replaces a pod only when it is
  deleted. ``currentRevision`` / ``updateRevision`` as the real controller reports them.

Controllers run synchronously inside store listeners (so a write's ReplicaSets and pods exist when the request
returns) and defer only the timed parts to the :class:`~sandbox.kube.scheduler.Scheduler`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
from decimal import Decimal
from typing import Any

from . import quantity
from .conditions import condition as _condition
from .conditions import set_condition
from .discovery import lookup
from .errors import ApiError
from .hpa import HpaController
from .scheduler import Scheduler
from .store import Event, Obj, Store, now_iso

DEPLOY = lookup("deployments")
RS = lookup("replicasets")
STS = lookup("statefulsets")
POD = lookup("pods")
NAMESPACE = lookup("namespaces")

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HASH_LABEL = "pod-template-hash"
STS_REVISION_LABEL = "controller-revision-hash"
MAX_REVISION_HISTORY_CHARS = 2000
STUCK_ANNOTATION = "sandbox.infra/stuck"
SKIP_COPY = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
)
DEFAULT_BROKEN_IMAGE = r":broken$"
DEFAULT_NODE_ALLOCATABLE = {"cpu": "8", "memory": "32Gi"}
NODE_NAME = "sandbox-node"
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
    """Skip the workload sync for writes that changed neither spec, annotations nor generation
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


def _status_int(obj: Obj, key: str) -> int:
    value = (obj.get("status") or {}).get(key, 0)
    return value if isinstance(value, int) else 0


def _scaled(value: Any, replicas: int, round_up: bool) -> int:
    """An int-or-percent of ``maxSurge`` / ``maxUnavailable`` resolved against ``replicas``."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            exact = replicas * float(value[:-1]) / 100
        except ValueError:
            return 0
        return math.ceil(exact) if round_up else math.floor(exact)
    return value if isinstance(value, int) else 0


def fenceposts(d: Obj, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate deployment, as ``ResolveFenceposts`` gives them."""
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = _scaled(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = _scaled(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _owned_by(obj: Obj, uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("uid") == uid and r.get("controller") for r in refs)


def _owner_ref(owner: Obj, kind: str) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions", [])
        if isinstance(c, dict)
    )


class Controllers:
    """All controllers of one sandbox server, wired to its store."""

    def __init__(
        self,
        store: Store,
        rollout_delay: float = 0.05,
        hpa_delay: float = 0.05,
        *,
        broken_image: str = DEFAULT_BROKEN_IMAGE,
        node_allocatable: dict[str, str] | None = None,
        hpa_sync_period: float = 15.0,
        hpa_downscale_stabilization: float = 300.0,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.rollout_delay = rollout_delay
        self.scheduler = Scheduler(store.lock)
        self.broken_image = re.compile(broken_image)
        allocatable = node_allocatable if node_allocatable is not None else DEFAULT_NODE_ALLOCATABLE
        self.node_allocatable = {name: quantity.value_of(value) for name, value in allocatable.items()}
        self.hpa = HpaController(store, self.scheduler, hpa_delay, hpa_sync_period, hpa_downscale_stabilization)
        self._rng = random.Random(seed)
        self._stuck: set[tuple[str, str]] = set()
        self._progress: dict[tuple[str, str], int] = {}  # deployment -> progress counter (deadline timers)
        # template dict -> its semantic key; stored objects are never changed in place and writes that keep the
        # spec keep its dicts, so the id of a template (held here, so it cannot be reused) identifies its content
        self._key_cache: dict[int, tuple[Any, str]] = {}
        self._children: dict[str, dict[tuple[str, str], None]] = {}  # owner uid -> (resource key, name) it controls
        self._revisions: dict[tuple[str, str, str], Obj] = {}  # StatefulSet revisions (ControllerRevisions)
        self._dirty: dict[tuple[str, str], None] = {}  # deployments to sync once the current events are dispatched
        store.add_listener(self._on_event)
        store.add_idle_hook(self._sync_dirty)

    # --- public knobs ----------------------------------------------------------------------------------

    def set_stuck(self, namespace: str, name: str, stuck: bool = True) -> None:
        """Make a deployment's pods never become ready (its rollouts end in ProgressDeadlineExceeded after
        ``rollout_delay``), or let them become ready again."""
        with self.store.lock:
            if stuck:
                self._stuck.add((namespace, name))
            else:
                self._stuck.discard((namespace, name))
            d = self.store.get(DEPLOY, namespace, name)
            if d is None:
                return
            if stuck:
                self._arm_deadline(d)
                return
            for rs in self._owned_rs(d):
                for pod in self._pods_of(rs):
                    if not _pod_ready(pod):
                        self._schedule_ready(pod)

    def settle(self, timeout_s: float = 5.0) -> bool:
        return self.scheduler.settle(timeout_s)

    def stop(self) -> None:
        self.scheduler.stop()

    # --- dispatch --------------------------------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        meta = ev.obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        key = ev.resource.key
        if key in (POD.key, RS.key):
            self._index_children(ev)
        if key == DEPLOY.key and ev.type != "DELETED" and _needs_sync(ev):
            self._dirty[(ns, name)] = None
        elif key == RS.key and ev.type != "DELETED":
            if ev.old is None or ev.old.get("spec") != ev.obj.get("spec"):
                self.sync_replicaset(ns, name)
            self._sync_owner(ev.obj, DEPLOY, self._mark_dirty)
        elif key == STS.key and ev.type != "DELETED" and _needs_sync(ev):
            self.sync_statefulset(ns, name)
        elif key == POD.key and ev.type == "DELETED":
            self._sync_owner(ev.obj, RS, self.sync_replicaset)
            self._sync_owner(ev.obj, STS, self.sync_statefulset)
        if key == "namespaces" and ev.type == "MODIFIED" and meta.get("deletionTimestamp"):
            self.scheduler.schedule(self.rollout_delay, lambda: self._finalize_namespace(name))
        self.hpa.on_event(ev)

    def _mark_dirty(self, ns: str, name: str) -> None:
        self._dirty[(ns, name)] = None

    def _sync_dirty(self) -> None:
        """One deployment sync for all the ReplicaSet and pod events of a write (the real controller's work
        queue does the same: a key queued many times is synced once)."""
        while self._dirty:
            ns, name = next(iter(self._dirty))
            del self._dirty[(ns, name)]
            self.sync_deployment(ns, name)

    def _sync_owner(self, obj: Obj, owner_kind: Any, sync: Any) -> None:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") == owner_kind.kind:
                owner = self.store.peek(owner_kind, meta.get("namespace", ""), str(ref.get("name", "")))
                if owner is not None and owner["metadata"]["uid"] == ref.get("uid"):
                    sync(meta.get("namespace", ""), owner["metadata"]["name"])

    # --- namespaces ------------------------------------------------------------------------------------

    def _finalize_namespace(self, name: str) -> None:
        """Namespace controller: a Terminating namespace goes away with everything in it."""
        ns = self.store.get(NAMESPACE, "", name)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            self.store.delete(NAMESPACE, "", name)

    # --- pods ------------------------------------------------------------------------------------------

    def _index_children(self, ev: Event) -> None:
        """Keep the owner -> pods / ReplicaSets index that ``_pods_of`` and ``_owned_rs`` read."""
        child = (ev.resource.key, (ev.obj.get("metadata") or {}).get("name", ""))
        for obj in (ev.old, ev.obj):
            for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("controller"):
                    self._children.get(str(ref.get("uid")), {}).pop(child, None)
        if ev.type != "DELETED":
            for ref in (ev.obj.get("metadata") or {}).get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("controller"):
                    self._children.setdefault(str(ref.get("uid")), {})[child] = None
        if ev.type == "DELETED":
            self._children.pop(str((ev.obj.get("metadata") or {}).get("uid")), None)

    def _create_child(self, resource: Any, obj: Obj) -> Obj:
        """Create a pod or ReplicaSet and index it now: its ADDED event is dispatched only after this sync."""
        created = self.store.create(resource, obj)
        self._index_children(Event("ADDED", resource, created, 0))
        return created

    def _delete_child(self, resource: Any, ns: str, name: str) -> None:
        self._index_children(Event("DELETED", resource, self.store.delete(resource, ns, name), 0))

    def _controlled(self, owner: Obj, resource: Any) -> list[Obj]:
        ns = owner["metadata"].get("namespace", "")
        names = sorted(name for key, name in self._children.get(owner["metadata"]["uid"], {}) if key == resource.key)
        found = (self.store.peek(resource, ns, name) for name in names)
        return [o for o in found if o is not None and _owned_by(o, owner["metadata"]["uid"])]

    def _pods_of(self, owner: Obj) -> list[Obj]:
        return self._controlled(owner, POD)

    def _unschedulable(self, pod_spec: dict[str, Any]) -> list[str]:
        """The resources the pod requests more of than the node has (kube-scheduler's "Insufficient cpu")."""
        wanted: dict[str, Decimal] = {}
        for c in pod_spec.get("containers") or []:
            requests = ((c.get("resources") or {}).get("requests") or {}) if isinstance(c, dict) else {}
            for name, value in requests.items():
                if quantity.is_quantity(value):
                    wanted[name] = wanted.get(name, Decimal(0)) + quantity.value_of(value)
        return sorted(n for n, v in wanted.items() if n in self.node_allocatable and v > self.node_allocatable[n])

    def _broken_images(self, pod_spec: dict[str, Any]) -> list[str]:
        return [
            str(c.get("image"))
            for c in pod_spec.get("containers") or []
            if isinstance(c, dict) and self.broken_image.search(str(c.get("image", "")))
        ]

    def _create_pod(
        self, owner: Obj, owner_kind: str, name: str, template: Obj, extra_labels: dict[str, str]
    ) -> str | None:
        """Create the pod; returns why admission refused it (quota, LimitRange), or None."""
        meta = owner["metadata"]
        tmeta = template.get("metadata") or {}
        spec = copy.deepcopy(template.get("spec") or {})
        now = now_iso()
        pod: Obj = {
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace", ""),
                "labels": {**(tmeta.get("labels") or {}), **extra_labels},
                "ownerReferences": [_owner_ref(owner, owner_kind)],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        insufficient = self._unschedulable(spec)
        if insufficient:
            message = (
                f"0/1 nodes are available: 1 Insufficient {insufficient[0]}. preemption: 0/1 nodes are available: "
                "1 No preemption victims found for incoming pod."
            )
            pod["status"]["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": now,
                }
            ]
        else:
            spec["nodeName"] = NODE_NAME
            broken = self._broken_images(spec)
            pod["status"].update(
                conditions=[
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
                ],
                containerStatuses=[
                    {
                        "name": str(c.get("name", "")),
                        "image": str(c.get("image", "")),
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": f'Back-off pulling image "{c.get("image")}"',
                            }
                            if str(c.get("image")) in broken
                            else {"reason": "ContainerCreating"}
                        },
                    }
                    for c in spec.get("containers") or []
                    if isinstance(c, dict)
                ],
            )
        try:
            created = self._create_child(POD, pod)
        except ApiError as error:
            return error.message
        if not insufficient and not self._broken_images(spec):
            self._schedule_ready(created)
        return None

    def _schedule_ready(self, pod: Obj) -> None:
        ns, name, uid = pod["metadata"].get("namespace", ""), pod["metadata"]["name"], pod["metadata"]["uid"]
        if not (pod.get("spec") or {}).get("nodeName") or self._broken_images(pod.get("spec") or {}):
            return
        self.scheduler.schedule(self.rollout_delay, lambda: self._mark_ready(ns, name, uid))

    def _held_by_stuck_deployment(self, pod: Obj) -> bool:
        ns = pod["metadata"].get("namespace", "")
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") != "ReplicaSet":
                continue
            rs = self.store.peek(RS, ns, str(ref.get("name", "")))
            for dref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
                d = self.store.peek(DEPLOY, ns, str(dref.get("name", ""))) if dref.get("kind") == "Deployment" else None
                if d is not None and self._is_stuck(d):
                    return True
        return False

    def _mark_ready(self, ns: str, name: str, uid: str) -> None:
        pod = self.store.get(POD, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid or _pod_ready(pod) or self._held_by_stuck_deployment(pod):
            return
        now = now_iso()
        status = pod["status"]
        status.update(phase="Running", startTime=now, podIP="10.0.0.1", hostIP="10.0.0.1")
        status["conditions"] = [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        for cs in status.get("containerStatuses") or []:
            cs.update(ready=True, started=True, state={"running": {"startedAt": now}})
        self.store.update(POD, pod, check_rv=False)
        self._sync_owner(pod, RS, self.sync_replicaset)
        self._sync_owner(pod, STS, self.sync_statefulset)

    def _pod_name(self, prefix: str) -> str:
        return f"{prefix}-{''.join(self._rng.choice(_HASH_ALPHABET) for _ in range(5))}"

    # --- replicasets -----------------------------------------------------------------------------------

    def sync_replicaset(self, ns: str, name: str) -> None:
        """Keep ``spec.replicas`` pods (deleting not-ready ones first), then report them in the status."""
        rs = self.store.peek(RS, ns, name)
        if rs is None:
            return
        pods = self._pods_of(rs)
        want = _replicas(rs)
        failure = None
        if len(pods) > want:
            # the real controller deletes unscheduled, then not-ready, then the newest pods first
            doomed = sorted(pods, key=lambda p: (_pod_ready(p), p["metadata"]["resourceVersion"]))[: len(pods) - want]
            for pod in doomed:
                self._delete_child(POD, ns, pod["metadata"]["name"])
        else:
            template = (rs.get("spec") or {}).get("template") or {}
            for _ in range(want - len(pods)):
                failure = self._create_pod(rs, "ReplicaSet", self._pod_name(name), template, {})
                if failure is not None:
                    break
        rs = self.store.peek(RS, ns, name)
        if rs is None:
            return
        pods = self._pods_of(rs)
        ready = sum(1 for p in pods if _pod_ready(p))
        status: dict[str, Any] = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status.update(readyReplicas=ready, availableReplicas=ready)
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        if failure is not None:
            kept = _condition(rs.get("status") or {}, "ReplicaFailure")
            status["conditions"] = [dict(kept)] if kept is not None else []
            set_condition(status, "ReplicaFailure", "True", "FailedCreate", failure)
        if rs.get("status") != status:
            self.store.update(RS, {**rs, "status": status}, check_rv=False)

    # --- deployments -----------------------------------------------------------------------------------

    def _rs_template_key(self, rs: Obj) -> str:
        """Semantic template key of a ReplicaSet or Deployment, cached per object version (syncs are frequent)."""
        template = rs["spec"].get("template")
        cached = self._key_cache.get(id(template))
        if cached is not None and cached[0] is template:
            return cached[1]
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        key = _template_key(template)
        self._key_cache[id(template)] = (template, key)
        return key

    def _is_stuck(self, d: Obj) -> bool:
        meta = d["metadata"]
        ann = meta.get("annotations") or {}
        return ann.get(STUCK_ANNOTATION) == "true" or (meta.get("namespace", ""), meta["name"]) in self._stuck

    def _owned_rs(self, d: Obj) -> list[Obj]:
        return self._controlled(d, RS)

    def _scale_rs(self, rs: Obj, replicas: int, annotations: dict[str, str] | None = None) -> Obj:
        ann = dict(rs["metadata"].get("annotations") or {})
        ann.update(annotations or {})
        if rs["spec"].get("replicas") == replicas and ann == (rs["metadata"].get("annotations") or {}):
            return rs
        new = {**rs, "spec": {**rs["spec"], "replicas": replicas}, "metadata": {**rs["metadata"], "annotations": ann}}
        return self.store.update(RS, new, check_rv=False)

    def sync_deployment(self, ns: str, name: str) -> None:
        d = self.store.peek(DEPLOY, ns, name)  # read-only until the status write, which copies
        if d is None:
            return
        spec = d.get("spec") or {}
        template = spec.get("template") or {}
        replicas = _replicas(d)
        owned = self._owned_rs(d)
        want = self._rs_template_key(d)
        current = next((rs for rs in owned if self._rs_template_key(rs) == want), None)
        olds = [rs for rs in owned if current is None or rs["metadata"]["uid"] != current["metadata"]["uid"]]
        if spec.get("paused"):
            self._sync_paused(d, current, olds)
            return
        max_old = max((_revision(rs) for rs in olds), default=0)
        new_rev = max_old + 1
        surge, unavailable = fenceposts(d, replicas)
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        ann_src = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in SKIP_COPY}
        rs_ann_extra = {DESIRED: str(replicas), MAX_REPLICAS: str(replicas + (0 if recreate else surge))}
        created = current is None
        if current is None:
            all_pods = sum(_replicas(rs) for rs in olds)
            first = replicas if not olds else (0 if recreate else max(min(replicas + surge - all_pods, replicas), 0))
            current = self._create_rs(d, template, new_rev, first, {**ann_src, **rs_ann_extra})
        else:
            ann = dict(current["metadata"].get("annotations") or {})
            old_rev = _revision(current)
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
            current = self._scale_rs(current, _replicas(current), ann)
        current, olds = self._roll(d, current, olds, recreate, surge, unavailable)
        self._cleanup_history(d, olds)

        live = self.store.peek(DEPLOY, ns, name)
        if live is None:
            return
        d = {**live, "metadata": {**live["metadata"], "annotations": {**(live["metadata"].get("annotations") or {})}}}
        d["metadata"]["annotations"][REVISION] = str(new_rev)
        self._update_status(d, current, olds, created, unavailable)

    def _sync_paused(self, d: Obj, current: Obj | None, olds: list[Obj]) -> None:
        """A paused deployment, as the real controller's ``sync`` keeps it: a new template makes no ReplicaSet
        (so ``updatedReplicas`` counts none), a changed replica count still scales the one active ReplicaSet,
        and Progressing is ``Unknown``/``DeploymentPaused`` until it is resumed (``checkPausedConditions``)."""
        replicas = _replicas(d)
        active = [rs for rs in ([current] if current else []) + olds if _replicas(rs) > 0]
        every = [current, *olds] if current else olds
        if len(active) == 1 and _replicas(active[0]) != replicas:
            scaled = self._scale_rs(active[0], replicas, {DESIRED: str(replicas)})
            every = [scaled if rs is active[0] else rs for rs in every]
        raw = d.get("status")
        old_status: dict[str, Any] = raw if isinstance(raw, dict) else {}
        status: dict[str, Any] = {
            **old_status,
            "conditions": [dict(c) for c in old_status.get("conditions") or [] if isinstance(c, dict)],
            "observedGeneration": int(d["metadata"].get("generation", 1)),
            "replicas": sum(_status_int(rs, "replicas") for rs in every),
            "updatedReplicas": _status_int(current, "replicas") if current else 0,
            "readyReplicas": sum(_status_int(rs, "readyReplicas") for rs in every),
            "availableReplicas": sum(_status_int(rs, "availableReplicas") for rs in every),
        }
        set_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        if status != old_status:
            self.store.update(DEPLOY, {**d, "status": status}, check_rv=False)

    def _roll(
        self, d: Obj, new_rs: Obj, olds: list[Obj], recreate: bool, surge: int, unavailable: int
    ) -> tuple[Obj, list[Obj]]:
        """One step of the rollout: the real controller's scale-up of the new ReplicaSet and scale-down of the
        old ones, bounded by what is available now."""
        replicas = _replicas(d)
        olds = sorted(olds, key=lambda rs: rs["metadata"].get("creationTimestamp", ""))
        if recreate:
            olds = [self._scale_rs(rs, 0) for rs in olds]
            if all(_status_int(rs, "replicas") == 0 for rs in olds):
                new_rs = self._scale_rs(new_rs, replicas)
            return new_rs, olds
        new_count = _replicas(new_rs)
        if new_count > replicas:
            new_rs = self._scale_rs(new_rs, replicas)
        elif new_count < replicas:
            all_count = new_count + sum(_replicas(rs) for rs in olds)
            room = replicas + surge - all_count
            if room > 0:
                new_rs = self._scale_rs(new_rs, new_count + min(room, replicas - new_count))
        if not any(_replicas(rs) for rs in olds):
            return new_rs, olds
        all_count = _replicas(new_rs) + sum(_replicas(rs) for rs in olds)
        min_available = replicas - unavailable
        new_unavailable = _replicas(new_rs) - _status_int(new_rs, "availableReplicas")
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return new_rs, olds
        available = _status_int(new_rs, "availableReplicas") + sum(_status_int(rs, "availableReplicas") for rs in olds)
        scaled: list[Obj] = []
        done = 0
        for rs in olds:  # unhealthy old pods first: removing them costs no availability
            count = _replicas(rs)
            unhealthy = count - _status_int(rs, "availableReplicas")
            step = min(max_scaled_down - done, max(unhealthy, 0))
            if step > 0:
                rs = self._scale_rs(rs, count - step)
                done += step
            scaled.append(rs)
        total = available - min_available
        done = 0
        olds = []
        for rs in scaled:
            count = _replicas(rs)
            step = min(count, total - done)
            if step > 0:
                rs = self._scale_rs(rs, count - step)
                done += step
            olds.append(rs)
        return new_rs, olds

    def _create_rs(self, d: Obj, template: Obj, revision: int, replicas: int, annotations: dict[str, str]) -> Obj:
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
                "ownerReferences": [_owner_ref(d, "Deployment")],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": tmpl},
            "status": {"replicas": 0},
        }
        return self._create_child(RS, rs)

    def _cleanup_history(self, d: Obj, olds: list[Obj]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        if not isinstance(limit, int) or limit < 0:
            return
        idle = sorted((rs for rs in olds if _replicas(rs) == 0 and _status_int(rs, "replicas") == 0), key=_revision)
        for rs in idle[: max(len(idle) - limit, 0)]:
            self._delete_child(RS, rs["metadata"].get("namespace", ""), rs["metadata"]["name"])

    def _update_status(self, d: Obj, new_rs: Obj, olds: list[Obj], created: bool, unavailable: int) -> None:
        """Counts from the ReplicaSets, then the conditions as ``syncRolloutStatus`` sets them."""
        replicas = _replicas(d)
        every = [new_rs, *olds]
        old_status = d.get("status") if isinstance(d.get("status"), dict) else {}
        assert isinstance(old_status, dict)
        # set_condition changes condition dicts in place: copy those, the rest of the status is replaced
        conditions = [dict(c) for c in old_status.get("conditions") or [] if isinstance(c, dict)]
        status: dict[str, Any] = {**old_status, "conditions": conditions}
        available = sum(_status_int(rs, "availableReplicas") for rs in every)
        status.update(
            observedGeneration=int(d["metadata"].get("generation", 1)),
            replicas=sum(_status_int(rs, "replicas") for rs in every),
            updatedReplicas=_status_int(new_rs, "replicas"),
            readyReplicas=sum(_status_int(rs, "readyReplicas") for rs in every),
            availableReplicas=available,
        )
        missing = max(sum(_replicas(rs) for rs in every) - available, 0)
        if missing:
            status["unavailableReplicas"] = missing
        else:
            status.pop("unavailableReplicas", None)
        if available >= replicas - unavailable:
            set_condition(
                status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
            )
        else:
            set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        rs_name = new_rs["metadata"]["name"]
        progressing = _condition(status, "Progressing")
        complete_before = (
            status["replicas"] == status["updatedReplicas"]
            and progressing is not None
            and progressing.get("reason") == "NewReplicaSetAvailable"
        )
        complete = status["updatedReplicas"] == replicas and status["replicas"] == replicas and available == replicas
        made_progress = (
            status["updatedReplicas"] > int(old_status.get("updatedReplicas") or 0)
            or status["replicas"] - status["updatedReplicas"]
            < int(old_status.get("replicas") or 0) - int(old_status.get("updatedReplicas") or 0)
            or status["readyReplicas"] > int(old_status.get("readyReplicas") or 0)
            or available > int(old_status.get("availableReplicas") or 0)
        )
        if created:
            set_condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{rs_name}"',
                touch=True,
            )
            self._arm_deadline(d)
        elif not complete_before:
            if complete:
                set_condition(
                    status,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                )
            elif made_progress or progressing is None:
                set_condition(
                    status,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                    touch=True,
                )
                self._arm_deadline(d)
        d["status"] = status
        self.store.update(DEPLOY, d, check_rv=False)

    def _arm_deadline(self, d: Obj) -> None:
        """(Re)start the progress deadline: it passes unless the rollout progresses again before it."""
        key = (d["metadata"].get("namespace", ""), d["metadata"]["name"])
        token = self._progress[key] = self._progress.get(key, 0) + 1
        seconds = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
        stuck = self._is_stuck(d)
        delay = self.rollout_delay if stuck else float(seconds if isinstance(seconds, int) else 600)
        # the manual switch's short deadline is pending work (settle waits for it); a real deadline is a timer
        self.scheduler.schedule(delay, lambda: self._deadline_passed(key, token), timer=not stuck)

    def _deadline_passed(self, key: tuple[str, str], token: int) -> None:
        if self._progress.get(key) != token:
            return  # progressed since: a later timer is armed
        d = self.store.get(DEPLOY, *key)
        if d is None:
            return
        status = d.get("status") or {}
        cond = _condition(status, "Progressing")
        if cond is None or cond.get("status") != "True" or cond.get("reason") == "NewReplicaSetAvailable":
            return
        want = self._rs_template_key(d)
        rs_name = next((rs["metadata"]["name"] for rs in self._owned_rs(d) if self._rs_template_key(rs) == want), "")
        set_condition(
            status,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
        )
        self.store.update(DEPLOY, d, check_rv=False)

    # --- statefulsets ----------------------------------------------------------------------------------

    def sync_statefulset(self, ns: str, name: str) -> None:
        """Pods ``<name>-<i>``; RollingUpdate replaces the highest not-updated ordinal at or above ``partition``
        once every pod is Ready; OnDelete leaves replacement to whoever deletes a pod."""
        s = self.store.get(STS, ns, name)
        if s is None:
            return
        spec = s.get("spec") or {}
        template = spec.get("template") or {}
        update_rev = f"{name}-{template_hash(template)}"
        raw_status = s.get("status")
        old_status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
        current_rev = str(old_status.get("currentRevision") or update_rev)
        replicas = _replicas(s)
        strategy = spec.get("updateStrategy") or {}
        partition = ((strategy.get("rollingUpdate") or {}).get("partition") or 0) if isinstance(strategy, dict) else 0
        pods = {p["metadata"]["name"]: p for p in self._pods_of(s)}

        def revision_of(pod: Obj) -> str:
            return str((pod["metadata"].get("labels") or {}).get(STS_REVISION_LABEL, ""))

        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name in pods:
                continue
            if any(not _pod_ready(p) for p in pods.values()) and spec.get("podManagementPolicy") != "Parallel":
                break  # OrderedReady: one pod at a time
            rev = update_rev if ordinal >= partition or current_rev == update_rev else current_rev
            labels = {STS_REVISION_LABEL: rev, "statefulset.kubernetes.io/pod-name": pod_name}
            if self._create_pod(s, "StatefulSet", pod_name, self._template_at(s, rev, template), labels):
                break
            pods = {p["metadata"]["name"]: p for p in self._pods_of(s)}
        for pod_name in sorted(pods, key=lambda n: -int(n.rsplit("-", 1)[1])):
            if int(pod_name.rsplit("-", 1)[1]) >= replicas:
                self._delete_child(POD, ns, pod_name)
                pods.pop(pod_name)
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and all(_pod_ready(p) for p in pods.values()):
            stale = [
                p for n, p in pods.items() if int(n.rsplit("-", 1)[1]) >= partition and revision_of(p) != update_rev
            ]
            if stale:
                victim = max(stale, key=lambda p: int(p["metadata"]["name"].rsplit("-", 1)[1]))
                self._delete_child(POD, ns, victim["metadata"]["name"])  # recreated at updateRevision on the event
        pods = {p["metadata"]["name"]: p for p in self._pods_of(s)}
        updated = [p for p in pods.values() if revision_of(p) == update_rev]
        ready = sum(1 for p in pods.values() if _pod_ready(p))
        if len(updated) == replicas and all(_pod_ready(p) for p in updated):
            current_rev = update_rev
        current = sum(1 for p in pods.values() if revision_of(p) == current_rev)
        s = self.store.get(STS, ns, name)
        if s is None:
            return
        s["status"] = {
            **old_status,
            "observedGeneration": int(s["metadata"].get("generation", 1)),
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": len(updated),
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": 0,
        }
        self._revisions[(ns, name, update_rev)] = copy.deepcopy(template)
        self.store.update(STS, s, check_rv=False)

    def _template_at(self, s: Obj, rev: str, template: Obj) -> Obj:
        """The pod template of a revision (ControllerRevisions, kept in memory)."""
        meta = s["metadata"]
        return self._revisions.get((meta.get("namespace", ""), meta["name"], rev), template)
