"""The resource table and everything kubectl discovers from it.

kubectl resolves ``deploy`` / ``hpa`` / ``deployment`` through discovery and validates ``apply`` through OpenAPI
v3 before it sends a single object request (see kubectl-wire.md). One table (:data:`RESOURCES`) drives the
router, the store keys, legacy discovery, aggregated discovery and the minimal OpenAPI documents, so they
cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "sandbox",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    """One served resource (a plural in one group-version)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    has_generation: bool = False
    categories: tuple[str, ...] = ()
    default_spec: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Store key and message name: ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_version_path(self) -> str:
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("scale", "status"), True, ("all",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("scale", "status"), True, ("all",)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("scale", "status"), True, ("all",)),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
        True,
        ("all",),
    ),
    ResourceType(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
        True,
        ("all",),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("", "v1", "pods", "Pod", True, ("po",), ("status",), False, ("all",)),
    ResourceType("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    ResourceType("", "v1", "limitranges", "LimitRange", True, ("limits",)),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",), True),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
)

BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
STORED: tuple[ResourceType, ...] = tuple(
    {r.key: r for r in reversed(RESOURCES)}[k] for k in dict.fromkeys(r.key for r in RESOURCES)
)
"""One type per stored resource, in its storage version (autoscaling/v1 is a view of the v2 objects)."""
HPA_V1 = BY_PATH[("autoscaling", "v1", "horizontalpodautoscalers")]
HPA_V2 = BY_PATH[("autoscaling", "v2", "horizontalpodautoscalers")]
GROUP_VERSIONS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((r.group, r.version) for r in RESOURCES))


def lookup(name: str) -> ResourceType:
    """Resolve a kind, plural, singular, short name or ``plural.group`` (for the Python API)."""
    low = name.lower()
    for r in RESOURCES:
        if low in (r.kind.lower(), r.plural, r.singular, r.key, *r.short_names):
            return r
    raise KeyError(f"unknown resource {name!r}")


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.kind == kind and r.api_version == api_version:
            return r
    return None


def _sub_kind(r: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "scale":
        return ("autoscaling", "v1", "Scale")
    return (r.group, r.version, r.kind)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list() -> dict[str, Any]:
    """Each group once, its versions in preference order (the first listed in RESOURCES is preferred)."""
    versions: dict[str, list[dict[str, str]]] = {}
    for group, version in GROUP_VERSIONS:
        if group:
            versions.setdefault(group, []).append({"groupVersion": f"{group}/{version}", "version": version})
    groups = [{"name": g, "versions": vs, "preferredVersion": vs[0]} for g, vs in versions.items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """Legacy ``APIResourceList`` for one group-version, or None when not served."""
    if (group, version) not in GROUP_VERSIONS:
        return None
    items: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ALL_VERBS,
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        items.append(entry)
        for sub in r.subresources:
            g, v, k = _sub_kind(r, sub)
            sub_entry: dict[str, Any] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": k,
                "verbs": ["get", "patch", "update"],
            }
            if g != r.group:
                sub_entry["group"] = g
                sub_entry["version"] = v
            items.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


def _aggregated_group(group: str) -> dict[str, Any]:
    versions = []
    for g, version in GROUP_VERSIONS:
        if g != group:
            continue
        resources = []
        for r in RESOURCES:
            if (r.group, r.version) != (g, version):
                continue
            entry: dict[str, Any] = {
                "resource": r.plural,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "singularResource": r.singular,
                "verbs": ALL_VERBS,
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            subs = []
            for sub in r.subresources:
                sg, sv, sk = _sub_kind(r, sub)
                subs.append(
                    {
                        "subresource": sub,
                        "responseKind": {"group": sg, "version": sv, "kind": sk},
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if subs:
                entry["subresources"] = subs
            resources.append(entry)
        versions.append({"version": version, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}


def aggregated(core: bool) -> dict[str, Any]:
    """``APIGroupDiscoveryList`` for ``/api`` (core=True) or ``/apis``."""
    groups = [""] if core else [g for g in dict.fromkeys(g for g, _ in GROUP_VERSIONS) if g]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [_aggregated_group(g) for g in groups],
    }


def _gv_hash(gv_path: str) -> str:
    return hashlib.sha256(gv_path.encode()).hexdigest()[:16].upper()


def openapi_root() -> dict[str, Any]:
    """OpenAPI v3 root: one entry per group-version (``{"paths":{}}`` alone is not enough)."""
    paths = {}
    for group, version in GROUP_VERSIONS:
        gvp = f"apis/{group}/{version}" if group else f"api/{version}"
        paths[gvp] = {"serverRelativeURL": f"/openapi/v3/{gvp}?hash={_gv_hash(gvp)}"}
    return {"paths": paths}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def openapi_group_version(gv_path: str) -> dict[str, Any] | None:
    """A group-version document whose PATCH operations carry the GVK and a ``fieldValidation`` parameter.

    kubectl only checks that the server supports ``fieldValidation`` for the kind; schemas may be empty because
    it computes strategic merge patches from compiled-in types.
    """
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for r in RESOURCES:
        if r.group_version_path != gv_path:
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        params = [_param(p) for p in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")]
        op = {
            "operationId": f"patch{r.kind}",
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }
        ns = "namespaces/{namespace}/" if r.namespaced else ""
        item_path = f"/{gv_path}/{ns}{r.plural}/{{name}}"
        paths[item_path] = {
            "get": {
                "operationId": f"read{r.kind}",
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
            },
            "put": {**op, "operationId": f"replace{r.kind}", "x-kubernetes-action": "put"},
            "patch": op,
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        }
        paths[f"/{gv_path}/{ns}{r.plural}"] = {
            "post": {**op, "operationId": f"create{r.kind}", "x-kubernetes-action": "post"},
        }
        prefix = "io.k8s.api.core" if not r.group else f"io.k8s.api.{r.group.split('.')[0]}"
        schemas[f"{prefix}.{r.version}.{r.kind}"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [gvk],
        }
    if not paths:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def etag(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
