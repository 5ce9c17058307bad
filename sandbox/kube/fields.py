"""Known fields of the served kinds, for ``fieldValidation`` (Strict: 400, Warn: a ``Warning`` header, Ignore).

kube-apiserver decodes built-in types into Go structs, so fields they do not have are reported (paths like
``spec.template.spec.containers[0].foo``) and never stored. The tree below lists the fields a client can send;
``OPEN`` marks a subtree the sandbox does not check (its content is kept as sent).
"""

from __future__ import annotations

from typing import Any

Tree = dict[str, Any]
OPEN: Tree = {}


def _open(names: str) -> Tree:
    """Fields (space-separated) whose content is not checked."""
    return dict.fromkeys(names.split(), OPEN)


_META: Tree = _open(
    "name generateName namespace selfLink uid resourceVersion generation creationTimestamp deletionTimestamp "
    "deletionGracePeriodSeconds labels annotations ownerReferences finalizers managedFields"
)
_CONTAINER: Tree = {
    **_open(
        "name image command args workingDir ports envFrom env resizePolicy restartPolicy volumeMounts volumeDevices "
        "livenessProbe readinessProbe startupProbe lifecycle terminationMessagePath terminationMessagePolicy "
        "imagePullPolicy securityContext stdin stdinOnce tty"
    ),
    "resources": dict.fromkeys(("requests", "limits", "claims"), OPEN),
}
_POD_SPEC: Tree = {
    **_open(
        "volumes ephemeralContainers restartPolicy terminationGracePeriodSeconds activeDeadlineSeconds dnsPolicy "
        "nodeSelector serviceAccountName serviceAccount automountServiceAccountToken nodeName hostNetwork hostPID "
        "hostIPC shareProcessNamespace securityContext imagePullSecrets hostname subdomain affinity schedulerName "
        "tolerations hostAliases priorityClassName priority dnsConfig readinessGates runtimeClassName "
        "enableServiceLinks preemptionPolicy overhead topologySpreadConstraints setHostnameAsFQDN os hostUsers "
        "schedulingGates resourceClaims resources"
    ),
    "containers": [_CONTAINER],
    "initContainers": [_CONTAINER],
}
_TEMPLATE: Tree = {"metadata": _META, "spec": _POD_SPEC}
_WORKLOAD: Tree = dict.fromkeys(("replicas", "selector", "minReadySeconds", "revisionHistoryLimit"), OPEN) | {
    "template": _TEMPLATE
}
SPECS: dict[str, Tree] = {
    "Deployment": _WORKLOAD | dict.fromkeys(("strategy", "paused", "progressDeadlineSeconds"), OPEN),
    "ReplicaSet": _WORKLOAD,
    "StatefulSet": _WORKLOAD
    | _open(
        "volumeClaimTemplates serviceName podManagementPolicy updateStrategy persistentVolumeClaimRetentionPolicy "
        "ordinals"
    ),
    "HorizontalPodAutoscaler": dict.fromkeys(
        ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"), OPEN
    ),
    "Lease": _open(
        "holderIdentity leaseDurationSeconds acquireTime renewTime leaseTransitions strategy preferredHolder"
    ),
    "Pod": _POD_SPEC,
    "Namespace": {"finalizers": OPEN},
    "ResourceQuota": _open("hard scopes scopeSelector"),
    "LimitRange": {"limits": [_open("type max min default defaultRequest maxLimitRequestRatio")]},
    "PodDisruptionBudget": _open("minAvailable maxUnavailable selector unhealthyPodEvictionPolicy"),
}
_BODY: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData", "immutable"),
    "Role": ("rules",),
    "ClusterRole": ("rules", "aggregationRule"),
    "RoleBinding": ("roleRef", "subjects"),
    "ClusterRoleBinding": ("roleRef", "subjects"),
}


def tree_of(kind: str) -> Tree:
    top: Tree = {"apiVersion": OPEN, "kind": OPEN, "metadata": _META}
    if kind in SPECS:
        return top | {"spec": SPECS[kind], "status": OPEN}
    return top | dict.fromkeys(_BODY.get(kind, ()), OPEN)


def drop_unknown(value: Any, tree: Any, path: str = "") -> list[str]:
    """Remove the fields ``tree`` does not know from ``value`` (in place); returns their paths."""
    if isinstance(tree, list) and isinstance(value, list):
        found: list[str] = []
        for i, item in enumerate(value):
            found += drop_unknown(item, tree[0], f"{path}[{i}]")
        return found
    if not isinstance(tree, dict) or tree is OPEN or not isinstance(value, dict):
        return []
    found = []
    for key in list(value):
        where = f"{path}.{key}" if path else key
        if key not in tree:
            found.append(where)
            del value[key]
        else:
            found += drop_unknown(value[key], tree[key], where)
    return found
