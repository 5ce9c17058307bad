"""The Kubernetes REST semantics, independent of HTTP plumbing: route a request, run the verb, answer.

:meth:`Api.handle` takes a :class:`Request` and returns a :class:`Response` (a JSON body or a stream of watch
lines). Every failure is an :class:`~sandbox.kube.errors.ApiError`, so malformed input becomes a 4xx
``Status`` and never an exception in the server.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from . import autoscaling, protobuf
from . import discovery as disc
from .auth import ADMIN, Authorizer, User, verb_of
from .discovery import ResourceType
from .errors import ApiError, bad_request, qualified
from .fields import drop_unknown, tree_of
from .patch import PatchError, json_patch, merge_patch, strategic_merge
from .schema import apply_defaults, check_types, validate
from .selectors import selector_from_match_labels
from .store import Obj, Store, now_iso
from .table import to_table, wants_table

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
JSON_TYPES = ("application/json", "application/yaml", "*/*", "")


@dataclass
class Request:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    user: User = ADMIN


@dataclass
class Response:
    code: int
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes | None] | None = None
    audit: dict[str, str] = field(default_factory=dict)  # verb, group, resource (with /subresource), namespace


def _not_served() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound")


def _method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, f"the server does not allow this method on the requested resource ({method})", "MethodNotAllowed"
    )


def _ctype(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad_request(f"the body of the request was in an unknown format: {e}") from None


def _parse_yaml(body: bytes) -> Any:
    try:
        return yaml.safe_load(body.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise bad_request(f"error decoding YAML: {e}") from None


def _scale_of(r: ResourceType, obj: Obj) -> Obj:
    meta = obj["metadata"]
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector_from_match_labels(spec.get("selector"))},
    }


class Api:
    """REST handlers over one :class:`Store`."""

    def __init__(self, store: Store, server_address: Callable[[], str]) -> None:
        self.store = store
        self._server_address = server_address
        self.authorizer = Authorizer(store)

    # --- routing -------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        try:
            # one request is one transaction: a patch's read-modify-write must not interleave with a
            # controller write, or it would fail with a Conflict the client never asked for
            with self.store.lock:
                return self._route(req)
        except ApiError as e:
            return Response(e.code, e.status())
        except PatchError as e:
            return Response(e.code, ApiError(e.code, str(e)).status())
        except RecursionError:
            return Response(400, ApiError(400, "the object is nested too deeply").status())
        except (AttributeError, TypeError, KeyError, IndexError) as e:
            # a body whose fields have shapes no served type allows (e.g. a list where an object belongs)
            return Response(400, ApiError(400, f"malformed object: {type(e).__name__}: {e}").status())

    def _route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if not parts:
            return self._get_only(req, {"paths": ["/api", "/apis", "/openapi/v3", "/version"]})
        head = parts[0]
        if parts == ["version"]:
            return self._get_only(req, disc.VERSION_INFO)
        if head in ("healthz", "readyz", "livez") and len(parts) == 1:
            self._require_get(req)
            return Response(200, b"ok", "text/plain")
        if head == "openapi":
            return self._openapi(req, parts)
        if head == "api":
            if len(parts) == 1:
                return self._discovery(req, core=True)
            group, version, rest = "", parts[1], parts[2:]
        elif head == "apis":
            if len(parts) == 1:
                return self._discovery(req, core=False)
            if len(parts) == 2:
                for g in disc.api_group_list()["groups"]:
                    if g["name"] == parts[1]:
                        return self._get_only(req, {"kind": "APIGroup", "apiVersion": "v1", **g})
                raise _not_served()
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_served()
        if not rest:
            doc = disc.resource_list(group, version)
            if doc is None:
                raise _not_served()
            return self._get_only(req, doc)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = disc.BY_PATH.get((group, version, rest[2]))
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        r = disc.BY_PATH.get((group, version, rest[0]))
        if r is None or len(rest) > 3:
            raise _not_served()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in r.subresources:
            raise _not_served()
        if r.namespaced and namespace is None and name is not None:
            raise _not_served()
        return self._verb(req, r, namespace, name, sub)

    def _require_get(self, req: Request) -> None:
        if req.method not in ("GET", "HEAD"):
            raise _method_not_allowed(req.method)

    def _get_only(self, req: Request, body: Any) -> Response:
        self._require_get(req)
        return Response(200, body)

    def _discovery(self, req: Request, core: bool) -> Response:
        self._require_get(req)
        if "as=APIGroupDiscoveryList" in req.headers.get("accept", "") and "v=v2;" in (
            req.headers.get("accept", "").replace(" ", "") + ";"
        ):
            return Response(200, disc.aggregated(core), disc.AGGREGATED_CONTENT_TYPE)
        if core:
            return Response(200, disc.api_versions(self._server_address()))
        return Response(200, disc.api_group_list())

    def _openapi(self, req: Request, parts: list[str]) -> Response:
        self._require_get(req)
        if parts == ["openapi", "v3"]:
            return Response(200, disc.openapi_root())
        if len(parts) > 2 and parts[1] == "v3":
            doc = disc.openapi_group_version("/".join(parts[2:]))
            if doc is not None:
                return Response(200, doc, headers={"Etag": f'"{disc.etag(doc)}"'})
        raise _not_served()

    # --- verbs ---------------------------------------------------------------------------------------

    def _verb(self, req: Request, r: ResourceType, ns: str | None, name: str | None, sub: str | None) -> Response:
        q = req.query
        verb = verb_of(req.method, name, q.get("watch") in ("true", "1"))
        audit = {"verb": verb, "group": r.group, "resource": f"{r.plural}/{sub}" if sub else r.plural}
        try:
            self.authorizer.authorize(req.user, verb, r, ns, name, sub)
            resp = self._run_verb(req, r, ns, name, sub)
        except ApiError as e:
            resp = Response(e.code, e.status())
        except PatchError as e:
            resp = Response(e.code, ApiError(e.code, str(e)).status())
        resp.audit = audit
        return resp

    def _run_verb(self, req: Request, r: ResourceType, ns: str | None, name: str | None, sub: str | None) -> Response:
        if r is disc.HPA_V1:
            return self._as_v1(req, ns, name, sub)
        q = req.query
        dry = q.get("dryRun", "")
        if dry not in ("", "All"):
            raise bad_request(f'dryRun: Unsupported value: "{dry}": supported values: "All"')
        dry_run = dry == "All"
        m = req.method
        if name is None:
            if m in ("GET", "HEAD"):
                if q.get("watch") in ("true", "1"):
                    return self._watch(req, r, ns)
                return self._list(req, r, ns)
            if m == "POST":
                return self._create(req, r, ns, dry_run)
            if m == "DELETE":
                return self._delete_collection(req, r, ns, dry_run)
            raise _method_not_allowed(m)
        if m in ("GET", "HEAD"):
            obj = self.store.require(r, ns or "", name)
            if sub == "scale":
                return Response(200, _scale_of(r, obj))
            if sub is None and wants_table(req.headers.get("accept", "")):
                return Response(200, to_table(r, [obj], obj["metadata"].get("resourceVersion", "")))
            return Response(200, obj)
        if m == "PUT":
            return self._update(req, r, ns or "", name, sub, dry_run)
        if m == "PATCH":
            return self._patch(req, r, ns or "", name, sub, dry_run)
        if m == "DELETE":
            if sub is not None:
                raise _method_not_allowed(m)
            return self._delete(req, r, ns or "", name, dry_run)
        raise _method_not_allowed(m)

    def _list(self, req: Request, r: ResourceType, ns: str | None) -> Response:
        q = req.query
        items, rv = self.store.list(r, ns, q.get("labelSelector"), q.get("fieldSelector"), copy_items=False)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        offset = 0
        if q.get("continue"):
            try:
                offset = int(base64.urlsafe_b64decode(q["continue"].encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise ApiError(410, "continue token is invalid or expired", "Expired") from None
            items = items[offset:]
        limit_s = q.get("limit")
        if limit_s:
            if not limit_s.isdigit():
                raise bad_request(f"invalid limit {limit_s!r}")
            limit = int(limit_s)
            if 0 < limit < len(items):
                meta["continue"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
                meta["remainingItemCount"] = len(items) - limit
                items = items[:limit]
        if wants_table(req.headers.get("accept", "")):
            table = to_table(r, items, str(rv))
            table["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return Response(200, table)
        body = {"kind": f"{r.kind}List", "apiVersion": r.api_version, "metadata": meta, "items": items}
        return Response(200, body)

    def _watch(self, req: Request, r: ResourceType, ns: str | None) -> Response:
        q = req.query
        rv_s = q.get("resourceVersion", "")
        if rv_s and not rv_s.isdigit():
            raise bad_request(f"invalid resourceVersion {rv_s!r}")
        timeout_s = q.get("timeoutSeconds", "")
        if timeout_s and not timeout_s.isdigit():
            raise bad_request(f"invalid timeoutSeconds {timeout_s!r}")
        events = self.store.watch(
            r,
            ns,
            int(rv_s) if rv_s else None,
            q.get("labelSelector"),
            q.get("fieldSelector"),
            float(timeout_s) if timeout_s else 1800.0,
        )

        as_table = wants_table(req.headers.get("accept", ""))

        def lines() -> Iterator[bytes | None]:
            for ev in events:
                if ev is None:
                    yield None
                elif as_table:
                    table = to_table(r, [ev.obj], str(ev.rv))
                    yield (json.dumps({"type": ev.type, "object": table}, separators=(",", ":")) + "\n").encode()
                else:
                    yield (json.dumps({"type": ev.type, "object": ev.obj}, separators=(",", ":")) + "\n").encode()

        return Response(200, None, "application/json", stream=lines())

    def _as_v1(self, req: Request, ns: str | None, name: str | None, sub: str | None) -> Response:
        """autoscaling/v1: convert what comes in to the stored v2, run it as v2, convert what goes out."""
        if req.method in ("POST", "PUT") and sub != "scale":
            body = json.dumps(autoscaling.to_v2(self._body_object(req))).encode()
            req = replace(req, body=body, headers={**req.headers, "content-type": "application/json"})
        elif req.method == "PATCH" and sub is None and name is not None:
            live = self.store.peek(disc.HPA_V2, ns or "", name)
            if live is None:
                raise disc_not_found(disc.HPA_V1, name)
            kind = _patch_kind(req)
            body = _parse_yaml(req.body) if kind == "apply" else _parse_json(req.body)
            patched = _patched(kind, body, autoscaling.to_v1(live))
            converted = json.dumps(autoscaling.to_v2(patched)).encode()
            req = replace(
                req, method="PUT", body=converted, headers={**req.headers, "content-type": "application/json"}
            )
        resp = self._run_verb(req, disc.HPA_V2, ns, name, sub)
        if isinstance(resp.body, dict):
            resp.body = _v1_view(resp.body)
        if resp.stream is not None:
            resp.stream = _v1_lines(resp.stream)
        return resp

    # --- writes --------------------------------------------------------------------------------------

    def _body_object(self, req: Request) -> Obj:
        ctype = _ctype(req.headers)
        if ctype in ("application/json", ""):
            obj = _parse_json(req.body)
        elif ctype == "application/yaml":
            obj = _parse_yaml(req.body)
        elif ctype == "application/vnd.kubernetes.protobuf":
            try:
                obj = protobuf.decode(req.body)
            except protobuf.ProtobufError as e:
                raise ApiError(
                    415,
                    f"the sandbox cannot decode this protobuf body ({e}); send JSON (e.g. kubectl create -f)",
                    "UnsupportedMediaType",
                ) from None
        else:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types "
                f'include: application/json, application/yaml (got "{ctype}")',
                "UnsupportedMediaType",
            )
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        return obj

    def _check_identity(self, r: ResourceType, obj: Obj, ns: str | None, name: str | None) -> None:
        check_types(obj)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version not in (None, "") and api_version != r.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({r.api_version})"
            )
        if kind not in (None, "") and kind != r.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({r.kind})")
        meta = obj.setdefault("metadata", {})
        meta.pop("deletionTimestamp", None)  # server-owned; the store keeps the live value
        if r.namespaced:
            body_ns = meta.get("namespace")
            if body_ns not in (None, "") and ns is not None and body_ns != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns if ns is not None else body_ns or ""
        if name is not None:
            if meta.get("name") not in (None, "", name):
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
                )
            meta["name"] = name

    def _prepare(self, r: ResourceType, obj: Obj, live: Obj | None, req: Request, resp_headers: dict[str, str]) -> Obj:
        """Decode as kube-apiserver does: unknown fields dropped (and reported as ``fieldValidation`` asks),
        types checked, defaults applied, then validated."""
        mode = req.query.get("fieldValidation") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Warn", "Strict"'
            )
        unknown = drop_unknown(obj, tree_of(r.kind))
        if unknown and mode == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
        if unknown and mode == "Warn":
            resp_headers["Warning"] = ", ".join(f'299 - "unknown field \\"{u}\\""' for u in unknown)
        check_types(obj)
        if "status" in r.subresources and r.kind != "Namespace":
            if live is None:
                obj.pop("status", None)
            else:
                obj["status"] = copy.deepcopy(live.get("status"))
                if obj["status"] is None:
                    obj.pop("status")
        apply_defaults(r, obj)
        if r.kind == "Namespace" and live is not None and live["metadata"].get("deletionTimestamp"):
            obj["status"] = {"phase": "Terminating"}
        if not obj["metadata"].get("name") and obj["metadata"].get("generateName"):
            return obj
        validate(r, obj)
        return obj

    def _create(self, req: Request, r: ResourceType, ns: str | None, dry_run: bool) -> Response:
        if r.namespaced and ns is None:
            raise _method_not_allowed("POST")
        obj = self._body_object(req)
        self._check_identity(r, obj, ns, None)
        headers: dict[str, str] = {}
        obj = self._prepare(r, obj, None, req, headers)
        return Response(201, self.store.create(r, obj, dry_run=dry_run), headers=headers)

    def _update(self, req: Request, r: ResourceType, ns: str, name: str, sub: str | None, dry: bool) -> Response:
        obj = self._body_object(req)
        if sub == "scale":
            live = self.store.require(r, ns, name)
            return Response(200, self._apply_scale(r, live, obj, dry))
        self._check_identity(r, obj, ns if r.namespaced else None, name)
        live = self.store.require(r, ns, name)
        headers: dict[str, str] = {}
        if sub == "status":
            new = copy.deepcopy(live)
            new["status"] = _status_of(obj)
            new["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion")
        else:
            new = self._prepare(r, obj, live, req, headers)
        return Response(200, self.store.update(r, new, dry_run=dry), headers=headers)

    def _apply_scale(self, r: ResourceType, live: Obj, scale: Obj, dry: bool) -> Obj:
        replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale.get("spec"), dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request("Scale.spec.replicas must be an integer")
        if replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{live["metadata"]["name"]}" is invalid: spec.replicas: '
                f"Invalid value: {replicas}: must be greater than or equal to 0",
                "Invalid",
            )
        raw_meta = scale.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        # shallow copies suffice: the store only rewrites top-level keys and metadata of what it is given
        new = {**live, "spec": {**live["spec"], "replicas": replicas}, "metadata": dict(live["metadata"])}
        new["metadata"]["resourceVersion"] = meta.get("resourceVersion")
        return _scale_of(r, self.store.update(r, new, dry_run=dry))

    def _patch(self, req: Request, r: ResourceType, ns: str, name: str, sub: str | None, dry: bool) -> Response:
        kind = _patch_kind(req)
        body = _parse_yaml(req.body) if kind == "apply" else _parse_json(req.body)
        live = self.store.peek(r, ns, name)  # read-only: everything below copies before changing
        if kind == "apply":
            if not req.query.get("fieldManager"):
                raise ApiError(
                    422,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                    "Invalid",
                )
            if not isinstance(body, dict):
                raise bad_request("apply patch body must be an object")
            if sub is None:
                if not body.get("apiVersion") or not body.get("kind"):
                    raise bad_request("apply patch must set apiVersion and kind")
                self._check_identity(r, body, ns if r.namespaced else None, name)
            if live is None:
                if sub is not None:
                    raise disc_not_found(r, name)
                headers: dict[str, str] = {}
                obj = self._prepare(r, body, None, req, headers)
                return Response(201, self.store.create(r, obj, dry_run=dry), headers=headers)
            if req.query.get("force") not in ("true", "1"):
                self._check_hpa_owns_replicas(r, ns, live, body)
        if live is None:
            raise disc_not_found(r, name)
        patched = _patched(kind, body, _scale_of(r, live) if sub == "scale" else live)
        if sub == "scale":
            return Response(200, self._apply_scale(r, live, patched, dry))
        meta = patched.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") != name or (r.namespaced and meta.get("namespace") != ns):
            raise bad_request("the patch may not change metadata.name or metadata.namespace")
        if meta.get("uid") not in (None, live["metadata"]["uid"]):
            raise ApiError(
                409,
                f"Precondition failed: UID in precondition: {meta.get('uid')}, UID in object "
                f"meta: {live['metadata']['uid']}",
                "Conflict",
            )
        patch_headers: dict[str, str] = {}
        if sub == "status":
            new = {**live, "metadata": dict(live["metadata"])}
            new["status"] = _status_of(patched)
            new["metadata"]["resourceVersion"] = meta.get("resourceVersion")
        else:
            self._check_identity(r, patched, ns if r.namespaced else None, name)
            new = self._prepare(r, patched, live, req, patch_headers)
        return Response(200, self.store.update(r, new, dry_run=dry), headers=patch_headers)

    def _check_hpa_owns_replicas(self, r: ResourceType, ns: str, live: Obj, applied: Obj) -> None:
        """Server-side apply conflicts on ``spec.replicas`` of an HPA-managed workload (the HPA's controller
        owns that field through ``/scale``), unless forced; the only field ownership the sandbox models."""
        spec = applied.get("spec")
        if r.kind not in ("Deployment", "StatefulSet", "ReplicaSet") or not isinstance(spec, dict):
            return
        if "replicas" not in spec or spec["replicas"] == (live.get("spec") or {}).get("replicas"):
            return
        hpas, _ = self.store.list(disc.lookup("hpa"), ns, copy_items=False)
        for hpa in hpas:
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == r.kind and ref.get("name") == live["metadata"]["name"]:
                raise ApiError(
                    409,
                    f'Apply failed with 1 conflict: conflict with "kube-controller-manager" using {r.api_version}: '
                    ".spec.replicas",
                    "Conflict",
                    {
                        "name": live["metadata"]["name"],
                        "group": r.group,
                        "kind": r.plural,
                        "causes": [
                            {
                                "reason": "FieldManagerConflict",
                                "field": ".spec.replicas",
                                "message": 'conflict with "kube-controller-manager"',
                            }
                        ],
                    },
                )

    def _delete_options(self, req: Request) -> dict[str, Any]:
        if not req.body.strip():
            return {}
        opts = _parse_json(req.body)
        if not isinstance(opts, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        return opts

    def _delete(self, req: Request, r: ResourceType, ns: str, name: str, dry_run: bool) -> Response:
        opts = self._delete_options(req)
        if r.kind == "Namespace" and name in PROTECTED_NAMESPACES:
            raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted', "Forbidden")
        dry_run = dry_run or opts.get("dryRun") == ["All"]
        pre = opts.get("preconditions") or {}
        if not isinstance(pre, dict):
            raise bad_request("preconditions must be an object")
        policy = opts.get("propagationPolicy") or req.query.get("propagationPolicy") or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        if r.kind == "Namespace":
            live = self.store.require(r, "", name)
            if pre.get("uid") not in (None, live["metadata"]["uid"]):
                raise ApiError(409, "Precondition failed: UID mismatch", "Conflict")
            if dry_run or live["metadata"].get("deletionTimestamp"):
                return Response(200, live)
            # like kube-apiserver: the namespace turns Terminating now and the namespace controller
            # (Controllers) removes its contents and then the namespace itself a moment later
            live["metadata"]["deletionTimestamp"] = now_iso()
            live["status"] = {"phase": "Terminating"}
            return Response(200, self.store.update(r, live, check_rv=False))
        gone = self.store.delete(
            r,
            ns,
            name,
            dry_run=dry_run,
            propagation=str(policy),
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
        )
        return Response(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "group": r.group, "kind": r.plural, "uid": gone["metadata"]["uid"]},
            },
        )

    def _delete_collection(self, req: Request, r: ResourceType, ns: str | None, dry_run: bool) -> Response:
        items, _ = self.store.list(r, ns, req.query.get("labelSelector"), req.query.get("fieldSelector"))
        deleted = []
        for o in items:
            meta = o["metadata"]
            if r.kind == "Namespace" and meta["name"] in PROTECTED_NAMESPACES:
                continue
            if self.store.get(r, meta.get("namespace", ""), meta["name"]) is not None:
                deleted.append(self.store.delete(r, meta.get("namespace", ""), meta["name"], dry_run=dry_run))
        body = {
            "kind": f"{r.kind}List",
            "apiVersion": r.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": deleted,
        }
        return Response(200, body)


def _patch_kind(req: Request) -> str:
    ctype = _ctype(req.headers)
    kind = PATCH_TYPES.get(ctype)
    if kind is None:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f'include: {", ".join(PATCH_TYPES)} (got "{ctype}")',
            "UnsupportedMediaType",
        )
    return kind


def _patched(kind: str, body: Any, base: Obj) -> Obj:
    """``base`` with a patch applied (a server-side apply body merges strategically)."""
    if kind == "json":
        patched = json_patch(base, body)
    elif kind == "merge":
        patched = merge_patch(base, body)
    else:
        patched = strategic_merge(base, body)
    if not isinstance(patched, dict):
        raise ApiError(422, "the patch did not produce an object", "Invalid")
    return patched


def _v1_view(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("kind") == "HorizontalPodAutoscaler":
        return autoscaling.to_v1(body)
    if body.get("kind") == "HorizontalPodAutoscalerList":
        return {**body, "apiVersion": "autoscaling/v1", "items": [autoscaling.to_v1(i) for i in body["items"]]}
    return body


def _v1_lines(lines: Iterator[bytes | None]) -> Iterator[bytes | None]:
    for line in lines:
        if line is None:
            yield None
            continue
        event = json.loads(line)
        if isinstance(event.get("object"), dict):
            event["object"] = _v1_view(event["object"])
        yield (json.dumps(event, separators=(",", ":")) + "\n").encode()


def _status_of(obj: Obj) -> dict[str, Any]:
    status = obj.get("status")
    if status is None:
        return {}
    if not isinstance(status, dict):
        raise bad_request("status must be an object")
    return status


def disc_not_found(r: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        f'{qualified(r.plural, r.group)} "{name}" not found',
        "NotFound",
        {"name": name, "group": r.group, "kind": r.plural},
    )
