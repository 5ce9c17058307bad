"""Object storage with kube-apiserver bookkeeping: uids, one global resourceVersion counter, generations,
conflicts, cascading deletes, an event history for watches, and synchronous change listeners (controllers).

One re-entrant lock serialises every write, so controllers may write from inside a listener: nested events
are queued and dispatched after the outer one, in order. Objects handed out are deep copies; callers never
hold references into the store.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .discovery import STORED, ResourceType
from .errors import ApiError, already_exists, conflict, not_found
from .selectors import field_selector, label_selector

Obj = dict[str, Any]
log = logging.getLogger(__name__)
HISTORY = 50_000


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    """One committed change: ``type`` is ADDED, MODIFIED or DELETED; ``obj`` is the new (or last) state."""

    type: str
    resource: ResourceType
    obj: Obj
    rv: int
    old: Obj | None = None


Listener = Callable[[Event], None]


def _owner_uids(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in refs if isinstance(ref, dict) and "uid" in ref]


def _strip_rv(obj: Obj) -> Obj:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    out["metadata"] = meta
    return out


class Store:
    """Thread-safe in-memory object store."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {r.key: {} for r in STORED}
        self._rv = 0
        # owner uid -> how many stored objects name it, so deleting an owner of nothing skips the scan for dependents
        self._owned: Counter[str] = Counter()
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._listeners: list[Listener] = []
        self._idle_hooks: list[Callable[[], None]] = []
        self._admission: list[Callable[[str, Obj], None]] = []
        self._queue: deque[Event] = deque()
        self._dispatching = False
        self.closed = False

    # --- bookkeeping ---------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add_admission(self, check: Callable[[str, Obj], None]) -> None:
        """Run ``check(kind, obj)`` on every create, dry runs included, before it is stored: it may change the
        object (defaults) or refuse it by raising :class:`ApiError`, as admission plugins do."""
        self._admission.append(check)

    def add_idle_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` whenever the events of a write have all been dispatched (its writes are dispatched in
        turn), so a controller can coalesce work that many events ask for into one sync."""
        self._idle_hooks.append(hook)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(self, ev: Event) -> None:
        self._history.append(ev)
        self.cond.notify_all()
        self._queue.append(ev)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queue:
                while self._queue:
                    nxt = self._queue.popleft()
                    for listener in self._listeners:
                        try:
                            listener(nxt)
                        except Exception:  # a controller bug must not fail the client's committed write
                            log.exception("sandbox listener failed on %s %s", nxt.type, nxt.resource.key)
                for hook in self._idle_hooks:
                    try:
                        hook()
                    except Exception:
                        log.exception("sandbox idle hook failed")
        finally:
            self._dispatching = False

    def close(self) -> None:
        """Wake every watcher so that streams end (server shutdown)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # --- reads ---------------------------------------------------------------------------------------

    def get(self, r: ResourceType, namespace: str, name: str) -> Obj | None:
        with self.lock:
            obj = self._objects[r.key].get((namespace if r.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def peek(self, r: ResourceType, namespace: str, name: str) -> Obj | None:
        """The stored object itself, for read-only use under the lock (no copy)."""
        return self._objects[r.key].get((namespace if r.namespaced else "", name))

    def require(self, r: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.get(r, namespace, name)
        if obj is None:
            raise not_found(r.plural, r.group, name)
        return obj

    def list(
        self,
        r: ResourceType,
        namespace: str | None = None,
        label: str | None = None,
        field: str | None = None,
        copy_items: bool = True,
    ) -> tuple[list[Obj], int]:
        """Matching objects sorted by namespace/name, and the store's resourceVersion at the time.

        ``copy_items=False`` hands out the stored objects themselves, for read-only use under the lock.
        """
        lmatch = label_selector(label)
        fmatch = field_selector(field)
        with self.lock:
            out = [
                copy.deepcopy(o) if copy_items else o
                for (ns, _), o in sorted(self._objects[r.key].items())
                if (namespace is None or ns == namespace)
                and lmatch((o.get("metadata") or {}).get("labels") or {})
                and fmatch(o)
            ]
            return out, self._rv

    def namespace_exists(self, namespace: str) -> bool:
        with self.lock:
            return ("", namespace) in self._objects["namespaces"]

    # --- writes --------------------------------------------------------------------------------------

    def create(self, r: ResourceType, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Insert a new object; fills uid, creationTimestamp, resourceVersion and generation.

        The store takes ownership of ``obj``; the returned object is the stored one: do not mutate it.
        """
        with self.lock:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
            name = meta.get("name")
            ns = meta.get("namespace", "") if r.namespaced else ""
            if r.namespaced and not self.namespace_exists(ns):
                raise not_found("namespaces", "", ns)
            if r.namespaced and self._objects["namespaces"][("", ns)]["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403,
                    f'{r.key} "{name}" is forbidden: unable to create new content in namespace {ns} because it '
                    "is being terminated",
                    "Forbidden",
                )
            for check in self._admission:
                check(r.kind, obj)
            if (ns, name) in self._objects[r.key]:
                raise already_exists(r.plural, r.group, str(name))
            if not r.namespaced:
                meta.pop("namespace", None)
            obj["apiVersion"] = r.api_version
            obj["kind"] = r.kind
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_iso()
            for k in ("deletionTimestamp", "selfLink"):
                meta.pop(k, None)
            if r.has_generation:
                meta["generation"] = 1
            if dry_run:
                meta.pop("resourceVersion", None)
                return obj
            rv = self._next_rv()
            meta["resourceVersion"] = str(rv)
            self._objects[r.key][(ns, name)] = obj
            self._owned.update(_owner_uids(obj))
            self._emit(Event("ADDED", r, obj, rv))
            return obj

    def update(
        self,
        r: ResourceType,
        obj: Obj,
        *,
        dry_run: bool = False,
        check_rv: bool = True,
    ) -> Obj:
        """Replace an object. 409 when ``metadata.resourceVersion`` is set and stale; a no-op is not a write.

        Server-owned metadata (uid, creationTimestamp, generation) is kept from the stored object and
        ``generation`` is bumped when ``spec`` changes. The store takes ownership of ``obj``; the returned
        object is the stored one: do not mutate it (stored objects are never changed in place, so events and
        watchers can share them).
        """
        with self.lock:
            meta = obj.get("metadata") or {}
            name = str(meta.get("name", ""))
            ns = str(meta.get("namespace", "")) if r.namespaced else ""
            old = self._objects[r.key].get((ns, name))
            if old is None:
                raise not_found(r.plural, r.group, name)
            old_meta = old["metadata"]
            sent_rv = meta.get("resourceVersion")
            if check_rv and sent_rv not in (None, "") and str(sent_rv) != old_meta["resourceVersion"]:
                raise conflict(r.plural, r.group, name)
            new = obj
            new["apiVersion"] = r.api_version
            new["kind"] = r.kind
            nmeta = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                if k in old_meta:
                    nmeta[k] = old_meta[k]
                else:
                    nmeta.pop(k, None)
            if "deletionTimestamp" in old_meta:  # once terminating, always terminating
                nmeta["deletionTimestamp"] = old_meta["deletionTimestamp"]
            if not r.namespaced:
                nmeta.pop("namespace", None)
            if new == old:
                return old
            if r.has_generation and new.get("spec") != old.get("spec"):
                nmeta["generation"] = int(old_meta.get("generation", 1)) + 1
            if dry_run:
                return new
            rv = self._next_rv()
            nmeta["resourceVersion"] = str(rv)
            self._objects[r.key][(ns, name)] = new
            self._disown(old)
            self._owned.update(_owner_uids(new))
            self._emit(Event("MODIFIED", r, new, rv, old))
            return new

    def delete(
        self,
        r: ResourceType,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        propagation: str = "Background",
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
    ) -> Obj:
        """Delete an object now (no finalizers); dependents go too unless ``propagation`` is Orphan."""
        with self.lock:
            ns = namespace if r.namespaced else ""
            old = self._objects[r.key].get((ns, name))
            if old is None:
                raise not_found(r.plural, r.group, name)
            meta = old["metadata"]
            if precondition_uid and precondition_uid != meta["uid"]:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {precondition_uid}, UID in object meta: {meta['uid']}",
                    "Conflict",
                )
            if precondition_rv and precondition_rv != meta["resourceVersion"]:
                raise conflict(r.plural, r.group, name)
            if dry_run:
                return copy.deepcopy(old)
            del self._objects[r.key][(ns, name)]
            self._disown(old)
            rv = self._next_rv()
            gone = {**old, "metadata": {**meta, "resourceVersion": str(rv)}}
            self._emit(Event("DELETED", r, gone, rv, old))
            if r.key == "namespaces":
                self._delete_namespace_contents(name)
            elif propagation != "Orphan" and r.key != "pods":  # nothing served is owned by a pod
                self._delete_dependents(ns, meta["uid"])
            return gone

    def _disown(self, obj: Obj) -> None:
        for uid in _owner_uids(obj):
            self._owned[uid] -= 1
            if self._owned[uid] <= 0:
                del self._owned[uid]

    def _delete_dependents(self, namespace: str, uid: str) -> None:
        if uid not in self._owned:
            return
        for rt in STORED:
            for (ns, name), o in list(self._objects[rt.key].items()):
                refs = (o.get("metadata") or {}).get("ownerReferences") or []
                owned = ns == namespace and any(isinstance(x, dict) and x.get("uid") == uid for x in refs)
                if owned and (ns, name) in self._objects[rt.key]:
                    self.delete(rt, ns, name)

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in STORED:
            if not rt.namespaced:
                continue
            for ns, name in list(self._objects[rt.key]):
                if ns == namespace and (ns, name) in self._objects[rt.key]:
                    self.delete(rt, ns, name, propagation="Orphan")

    # --- watch ---------------------------------------------------------------------------------------

    def watch(
        self,
        r: ResourceType,
        namespace: str | None,
        since: int | None,
        label: str | None = None,
        field: str | None = None,
        timeout_s: float = 1800.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Event | None]:
        """Events for ``r`` after resourceVersion ``since`` (None/0: synthetic ADDED for current objects first).

        Yields None as a heartbeat about once a second so the caller can notice a closed connection.
        Raises 410 Expired when ``since`` is older than the kept history.
        """
        lmatch = label_selector(label)
        fmatch = field_selector(field)

        def matches(ev: Event) -> bool:
            if ev.resource.key != r.key:
                return False
            meta = ev.obj.get("metadata") or {}
            if namespace is not None and meta.get("namespace", "") != namespace:
                return False
            return lmatch(meta.get("labels") or {}) and fmatch(ev.obj)

        deadline = time.monotonic() + timeout_s
        with self.lock:
            if since is None or since == 0:
                items, last = self.list(r, namespace, label, field)
                initial = [Event("ADDED", r, o, int(o["metadata"]["resourceVersion"])) for o in items]
            else:
                if (
                    since <= self._rv
                    and self._history
                    and len(self._history) == HISTORY
                    and (self._history[0].rv > since + 1)
                ):
                    raise ApiError(410, f"too old resource version: {since} ({self._rv})", "Expired")
                last = since
                initial = []
        return self._stream(initial, last, matches, deadline, should_stop)

    def _stream(
        self,
        initial: Sequence[Event],
        last: int,
        matches: Callable[[Event], bool],
        deadline: float,
        should_stop: Callable[[], bool],
    ) -> Iterator[Event | None]:
        yield from initial
        while True:
            batch: list[Event] = []
            with self.cond:
                while not self.closed and not should_stop():
                    if self._rv > last:
                        for ev in reversed(self._history):
                            if ev.rv <= last:
                                break
                            batch.append(ev)
                        batch.reverse()
                        last = self._rv
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self.cond.wait(min(remaining, 1.0))
                    if self._rv <= last:
                        break
                if self.closed or should_stop():
                    return
            matched = [ev for ev in batch if matches(ev)]
            if not matched:
                if time.monotonic() >= deadline:
                    return
                yield None
                continue
            yield from matched
