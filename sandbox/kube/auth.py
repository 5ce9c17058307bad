"""Authentication (bearer tokens) and RBAC authorisation, as kube-apiserver answers them.

Tokens map to users and groups (:meth:`Authenticator.add_token`); the sandbox's own token belongs to
``sandbox-admin`` in ``system:masters``, which may do anything, so the default kubeconfig keeps full access.
Everyone else is authorised by the ``rbac.authorization.k8s.io/v1`` Roles, ClusterRoles, RoleBindings and
ClusterRoleBindings stored in the server, evaluated like the RBAC authorizer: a request is allowed when a rule
of a role bound to the user, one of its groups or its service account matches verb, API group, resource
(``deployments/scale`` for a subresource) and, if the rule lists them, the object's name. A denied request
gets kube-apiserver's 403: ``<resource>.<group> "<name>" is forbidden: User "<u>" cannot <verb> resource
"<r>" in API group "<g>" in the namespace "<ns>"``; an unknown token gets 401 ``Unauthorized``.
Requests without a token act as ``anonymous_user`` (the admin unless configured otherwise: raw HTTP tests and
benchmarks send none); non-resource paths (discovery, OpenAPI, /version) are open to every authenticated user,
as the ``system:discovery`` ClusterRole makes them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .discovery import ResourceType, lookup
from .errors import ApiError, qualified
from .store import Obj, Store

ADMIN_TOKEN = "sandbox"
ADMIN_GROUP = "system:masters"
ROLE = lookup("roles")
ROLE_BINDING = lookup("rolebindings")
CLUSTER_ROLE = lookup("clusterroles")
CLUSTER_ROLE_BINDING = lookup("clusterrolebindings")


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


ADMIN = User("sandbox-admin", (ADMIN_GROUP, "system:authenticated"))
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def service_account_user(namespace: str, name: str) -> User:
    """The user a service account token authenticates as."""
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


def verb_of(method: str, name: str | None, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        return "get" if name is not None else ("watch" if watch else "list")
    if method == "DELETE":
        return "delete" if name is not None else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


class Authenticator:
    def __init__(self, anonymous_user: User = ADMIN) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, User] = {ADMIN_TOKEN: ADMIN}
        self.anonymous_user = anonymous_user

    def add_token(self, token: str, user: str, groups: tuple[str, ...] = ()) -> User:
        """Make ``token`` authenticate as ``user`` (``system:authenticated`` is added to its groups)."""
        if not token:
            raise ValueError("a token must not be empty")
        found = User(user, tuple(dict.fromkeys((*groups, "system:authenticated"))))
        with self._lock:
            self._tokens[token] = found
        return found

    def authenticate(self, authorization: str) -> User:
        if not authorization:
            return self.anonymous_user
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            user = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user


def _matches(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def _rule_allows(rule: Any, verb: str, group: str, resource: str, name: str | None) -> bool:
    if not isinstance(rule, dict):
        return False
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("verbs"), verb)
        and _matches(rule.get("apiGroups"), group)
        and _matches(rule.get("resources"), resource)
        and (not names or (name is not None and name in names))
    )


def _subject_is(subject: Any, user: User, binding_ns: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace') or binding_ns}:{name}"
    return False


class Authorizer:
    """RBAC over the roles and bindings in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _rules(self, user: User, namespace: str) -> list[Any]:
        bindings: list[tuple[Obj, str]] = [(b, "") for b in self.store.list(CLUSTER_ROLE_BINDING, copy_items=False)[0]]
        if namespace:
            bindings += [(b, namespace) for b in self.store.list(ROLE_BINDING, namespace, copy_items=False)[0]]
        rules: list[Any] = []
        for binding, ns in bindings:
            if not any(_subject_is(s, user, ns) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            role_type = ROLE if ref.get("kind") == "Role" and ns else CLUSTER_ROLE
            role = self.store.peek(role_type, ns if role_type is ROLE else "", str(ref.get("name", "")))
            if role is not None:
                rules.extend(role.get("rules") or [])
        return rules

    def authorize(
        self, user: User, verb: str, r: ResourceType, ns: str | None, name: str | None, sub: str | None
    ) -> None:
        """Raise the 403 kube-apiserver answers when no bound rule allows the request."""
        if user.is_admin:
            return
        namespace = name if r.kind == "Namespace" and name else ns or ""
        resource = f"{r.plural}/{sub}" if sub else r.plural
        if any(_rule_allows(rule, verb, r.group, resource, name) for rule in self._rules(user, namespace)):
            return
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        what = f'{qualified(r.plural, r.group)} "{name}"' if name else qualified(r.plural, r.group)
        raise ApiError(
            403,
            f'{what} is forbidden: User "{user.name}" cannot {verb} resource "{resource}" in API group '
            f'"{r.group}" {scope}',
            "Forbidden",
            {"name": name, "group": r.group, "kind": r.plural} if name else {"group": r.group, "kind": r.plural},
        )
