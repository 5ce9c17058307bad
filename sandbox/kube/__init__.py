"""Sandbox Kubernetes API server that real kubectl drives (issue 3).

No cluster can run on these machines, so tests, benchmarks and the demo point real ``kubectl`` at this server.
It answers what ``../shared/reference/kubectl-wire.md`` says kubectl sends, and models the behaviour a rollback
tool depends on; it is not a general Kubernetes.

Starting one
------------
* Python: ``SandboxServer(port=0, rollout_delay=0.05, hpa_delay=0.05, seed=0, *, broken_image=r":broken$",
  node_allocatable={"cpu": "8", "memory": "32Gi"}, hpa_sync_period=15.0, hpa_downscale_stabilization=300.0,
  anonymous_is_admin=True, latency_s=0.0).start()``; ``.url``, ``.https_url``,
  ``.write_kubeconfig(path, context="sandbox", namespace="default", token="sandbox")``,
  ``.stop()`` (also a context manager).
* Shell: ``infra-sandbox --port PORT --kubeconfig FILE [--seed-file objs.yaml] [--rollout-delay S]
  [--hpa-delay S] [--hpa-sync-period S] [--hpa-downscale-stabilization S] [--broken-image REGEX]
  [--token TOKEN=USER[:GROUP,...]] [--latency-ms MS] [--fault-seed N] [--namespace NS] [--context NAME]`` (or
  ``python -m sandbox.kube``); prints ``ready <url>`` once serving, exits 0 on SIGTERM/SIGINT.
* pytest: the ``kube_sandbox`` / ``kube_sandbox_factory`` fixtures in ``tests/fixtures/kube.py``.

Served
------
``/version`` (v1.32.4), aggregated (``apidiscovery.k8s.io/v2``) and legacy discovery, OpenAPI v3 (enough for
``apply`` validation), ``meta.k8s.io`` Tables for plain ``kubectl get``. Resources: namespaces, configmaps, pods,
deployments (+scale, +status), replicasets (+scale, +status), statefulsets (+scale, +status),
horizontalpodautoscalers autoscaling/v2 (+status) and autoscaling/v1 (converted, ``autoscaling.py``),
coordination.k8s.io/v1 leases, resourcequotas (+status), limitranges, policy/v1 poddisruptionbudgets (+status)
(``policy.py``: validation, LimitRange defaults, quota ``status.used`` from the pods, PDB status, and the LimitRanger
and ResourceQuota admission that refuses pods 403; a refused ReplicaSet reports ``ReplicaFailure``),
rbac.authorization.k8s.io/v1 roles, rolebindings, clusterroles, clusterrolebindings. Verbs: get, list (label and
field selectors, limit/continue), watch (chunked, from a resourceVersion, timeoutSeconds), create, update, delete
(DeleteOptions body, cascading to owned objects),
deletecollection, patch (merge, JSON 6902, strategic merge, server-side apply with create-if-absent),
``dryRun=All``. JSON bodies, plus protobuf bodies for the Namespace / ConfigMap / Deployment / ResourceQuota /
PodDisruptionBudget generators.

Behaviour
---------
uids, a global numeric resourceVersion, generation bumped on spec changes, no-op writes are not writes, 409 on
stale resourceVersions and duplicates, Status errors with standard reasons and ``details.causes``.
Controllers (``controllers.py``, ``hpa.py``): ReplicaSets and StatefulSets own real pods, ready after
``rollout_delay`` unless their image matches ``broken_image`` (ImagePullBackOff) or their requests exceed
``node_allocatable`` (Pending, Unschedulable); deployments roll within maxSurge/maxUnavailable (ReplicaSet per
template, revisions, reuse on undo, revisionHistoryLimit) and report ``ProgressDeadlineExceeded`` after
``progressDeadlineSeconds`` without progress (after ``rollout_delay`` when stuck: annotation
``sandbox.infra/stuck: "true"`` or ``set_stuck``); statefulsets RollingUpdate (partition) and OnDelete with
currentRevision/updateRevision; HPAs clamp into [min, max], scale on a simulated CPU metric (``set_metric``)
with stabilisation windows and ``behavior`` policies, and are disabled while the target is at 0; namespaces
go Terminating, then away with their contents. Server-side apply of ``spec.replicas`` on an HPA-managed
workload conflicts unless forced. Validation (``schema.py``, ``fields.py``): 1 MiB ConfigMaps, 256 KiB of
annotations, label/annotation key and value syntax, quantity syntax (400), requests <= limits, Lease fields,
``fieldValidation`` Strict/Warn/Ignore on nested fields (unknown fields are never stored), v2 HPA defaults.
AuthN/AuthZ (``auth.py``): bearer tokens over the HTTPS listener (client-go sends tokens only over TLS), RBAC
from the stored roles and bindings, 403 in kube-apiserver's words, 401 for unknown tokens; requests without a
token (the plain HTTP listener, the default kubeconfig) act as the admin.

Python API of :class:`SandboxServer`
------------------------------------
State: ``get(kind, ns, name)``, ``list_objects(kind, ns=None, label_selector=None)``, ``.store``.
Seeding: ``create(obj, namespace=None)``, ``update(obj)``, ``delete(kind, ns, name)``,
``create_namespace(ns)``, ``create_deployment(ns, name, replicas=1, containers=None, image="nginx:1.25",
labels=None, annotations=None, revision_history_limit=None, wait=True)``, ``create_hpa(ns, name, target,
min_replicas, max_replicas, target_kind="Deployment", wait=True)``, ``seed(objs)``, ``seed_file(path)``.
Controllers: ``set_stuck(ns, name, stuck=True)``, ``set_metric(ns, hpa, utilization)``,
``settle(timeout_s=5.0)``, ``fast_forward()`` (time jumps to the last pending piece of work; deadlines and
HPA resyncs are timers that fire only when due).
Auth: ``add_token(token, user, groups=())``.
Faults: ``.faults.add(method=, path_regex=, status=, retry_after=, latency_s=, drop=, answer_late_s=, count=, fraction=,
message=, command=, field_manager=)`` (``command="kubectl set"``: only requests whose ``Kubectl-Command`` header
names it; ``field_manager``: only writes with that ``fieldManager`` query parameter)
-> rule (``.id``, ``.fired``), ``.faults.remove(id)``, ``.faults.clear()``, ``.faults.seed(n)``.
Request log: ``requests(since=0)`` (with ``field_manager``, and ``user``, ``verb``, ``group``, ``resource`` of
resource requests),
``clear_requests()``.

HTTP control endpoints (never faulted or logged): ``GET|DELETE /_sandbox/requests`` (``?since=SEQ``),
``GET|POST|DELETE /_sandbox/faults`` (POST a rule object or a list; ``?seed=N``), ``DELETE
/_sandbox/faults/ID``, ``POST /_sandbox/objects``, ``POST /_sandbox/stuck`` ``{"namespace","name","stuck"}``,
``POST /_sandbox/metrics`` ``{"namespace","name","utilization"}``, ``POST /_sandbox/tokens``
``{"token","user","groups"}``, ``POST /_sandbox/settle``, ``POST /_sandbox/fast-forward``.

Not modelled: quota scopes and scopeSelector, object-count quotas other than ``pods``, events,
managedFields/field ownership (beyond the HPA replicas conflict), admission webhooks, services, nodes (one
implicit node), protobuf responses, API groups other than the ones above.
"""

from .faults import FaultInjector, FaultRule
from .server import SandboxServer

__all__ = ["FaultInjector", "FaultRule", "SandboxServer"]
