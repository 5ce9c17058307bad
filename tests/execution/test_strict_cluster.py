"""The flows through the CLI against a sandbox that fails like a real cluster (issue 15): pods that never become
ready, a ConfigMap over 1 MiB, RBAC from deployments/rbac.yaml, an HPA that scales on its metric."""

import base64
import copy
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.execution.conftest import APP, NAMESPACE, World
from tests.execution.test_lifecycle import summary_of
from tests.execution.test_scenarios import ORIGINAL_API, apply, by_action, rollback

RBAC_MANIFEST = Path(__file__).resolve().parents[2] / "deployments" / "rbac.yaml"
WORKER = "system:serviceaccount:infra-system:infra-orchestrator"
DEADLINE_S = 3
HPA_NAMES = ("web", "api", "worker")


def _wait(condition: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _verify_steps(stdout: str, nth: int = 0) -> dict[str, dict]:  # type: ignore[type-arg]
    """Verify steps by workload: `kubectl -n <ns> rollout status <workload> --timeout=...`; the apply's (nth 0),
    or those of the rollback that --atomic ran after it (nth 1)."""
    found: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for result in summary_of(stdout)["results"]:
        if result["type"] == "verify":
            found.setdefault(result["command"].split()[5], []).append(result)
    return {workload: results[nth] for workload, results in found.items() if len(results) > nth}


def _short_deadline(world: World, name: str) -> None:
    patch = f'{{"spec":{{"progressDeadlineSeconds":{DEADLINE_S}}}}}'
    world.kube.kubectl("-n", NAMESPACE, "patch", f"deployment/{name}", "-p", patch, check=True)


def test_a_rollout_that_never_becomes_ready_fails_with_kubectls_message(world: World) -> None:
    _short_deadline(world, "api")
    world.kube.kubectl("-n", NAMESPACE, "set", "image", "deployment/api", "app=shop/app:broken", check=True)
    started = time.monotonic()

    result = apply(world)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "failed"
    verify = _verify_steps(result.stdout)
    assert verify["deployment/api"]["status"] == "failed"
    assert 'deployment "api" exceeded its progress deadline' in verify["deployment/api"]["error"]
    assert verify["deployment/web"]["status"] == "succeeded"
    assert time.monotonic() - started < 100, "the progress deadline ends the wait, not the 120 s rollout timeout"
    progressing = next(c for c in world.deployment("api")["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    pods = world.kube.list_objects("pods", NAMESPACE, "app=api")
    waiting = [p for p in pods if p["spec"]["containers"][0]["image"] == "shop/app:broken"]
    assert waiting and all(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff" for p in waiting
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_atomic_after_a_rollout_that_never_becomes_ready_restores_the_workloads(world: World) -> None:
    _short_deadline(world, "api")
    world.write_plan(
        f"namespace: {NAMESPACE}\nactions:\n"
        "  - {type: scale_workload, name: web, replicas: 4}\n"
        "  - {type: update_resources, name: api, container: app, requests: {cpu: '64'}, limits: {cpu: '64'}}\n"
    )

    result = apply(world, "--atomic")

    assert result.returncode == 1, result.stdout + result.stderr
    assert 'deployment "api" exceeded its progress deadline' in _verify_steps(result.stdout)["deployment/api"]["error"]
    undone = by_action(result.stdout, "rollback")
    assert {undone[a]["status"] for a in ("scale_workload", "update_resources")} == {"succeeded"}
    assert _verify_steps(result.stdout, nth=1)["deployment/api"]["status"] == "succeeded", "the undo is verified"
    assert world.replicas("web") == 2 and world.resources("api") == ORIGINAL_API
    # the pod that asked for 64 CPUs never left Pending; after the restore the old pods serve again
    status = world.kube.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/api", "--timeout=20s")
    assert status.returncode == 0, status.stderr
    assert all(p["status"]["phase"] == "Running" for p in world.kube.list_objects("pods", NAMESPACE, "app=api"))


def test_a_record_over_1_mib_is_stored_in_objects_under_the_limit(world: World) -> None:
    """Three HPAs with 240 KiB annotations of random text: their before and after manifests make a record of
    about 1.4 MiB that gzip cannot shrink under 1 MiB, which a real API server refuses in one ConfigMap
    (`[]: Too long: may not be more than 1048576 bytes`). It is stored in chunks, each under the limit."""
    noise = random.Random(15)
    world.kube.create_deployment(NAMESPACE, "worker", replicas=1, containers=[dict(APP, name="app")])
    for name in HPA_NAMES:
        notes = base64.b64encode(noise.randbytes(180_000)).decode()
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NAMESPACE, "annotations": {"notes": notes}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 1, "maxReplicas": 4},
        }
        world.kube.create(hpa)
    world.write_plan(
        f"namespace: {NAMESPACE}\nactions:\n"
        + "".join(f"  - {{type: apply_hpa, name: {n}, minReplicas: 1, maxReplicas: 6}}\n" for n in HPA_NAMES)
    )

    result = apply(world)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = world.kube.list_objects("configmaps", NAMESPACE, "app.kubernetes.io/managed-by=infra-orchestrator")
    sizes = [len(json.dumps(cm).encode()) for cm in records]
    assert len(records) > 1 and sum(sizes) > 1024 * 1024 and max(sizes) <= 1024 * 1024, sizes
    undone = rollback(world)
    assert undone.returncode == 0, undone.stdout[-3000:] + undone.stderr[-3000:]
    assert all((world.hpa(n) or {})["spec"]["maxReplicas"] == 4 for n in HPA_NAMES)


def _worker_kubeconfig(world: World, rules_edit: Callable[[list[dict]], None] | None = None) -> str:  # type: ignore[type-arg]
    """Install deployments/rbac.yaml in the plan's namespace (as the admin) and return a kubeconfig that
    authenticates as the worker's service account."""
    documents = list(yaml.safe_load_all(RBAC_MANIFEST.read_text()))
    role = next(d for d in documents if d["kind"] == "Role")
    if rules_edit is not None:
        role["rules"] = copy.deepcopy(role["rules"])
        rules_edit(role["rules"])
    manifest = world.kube.write("rbac.yaml", yaml.safe_dump_all(documents))
    world.kube.kubectl("-n", NAMESPACE, "apply", "-f", str(manifest), check=True)
    groups = ("system:serviceaccounts", "system:serviceaccounts:infra-system")
    return str(world.kube.kubeconfig_as("worker-token", WORKER, groups))


def test_the_flows_work_under_the_projects_rbac_manifest(world: World) -> None:
    kubeconfig = _worker_kubeconfig(world)
    world.kube.clear_requests()
    world.label("execute-plan")

    applied = world.cli("apply", "--execute", f"--pr={world.pr}", KUBECONFIG=kubeconfig)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    world.label("rollback-plan")
    rolled = world.cli("rollback", "--execute", f"--pr={world.pr}", KUBECONFIG=kubeconfig)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert world.replicas("web") == 2 and world.resources("api") == ORIGINAL_API and world.hpa("web") is None
    users = {r.get("user") for r in world.kube.requests() if r.get("verb")}
    assert users == {WORKER}, "every API request was made as the worker, none needed more"
    assert all(r["status"] != 403 for r in world.kube.requests())


def test_a_step_outside_the_role_fails_cleanly_with_kubectls_forbidden_message(world: World) -> None:
    def without_scale_update(rules: list[dict]) -> None:  # type: ignore[type-arg]
        scale = next(rule for rule in rules if "deployments/scale" in rule["resources"])
        scale["verbs"].remove("update")  # a preconditioned scale (--current-replicas) is a GET, then a PUT

    kubeconfig = _worker_kubeconfig(world, without_scale_update)
    world.label("execute-plan")

    result = world.cli("apply", "--execute", f"--pr={world.pr}", KUBECONFIG=kubeconfig)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "failed"
    step = by_action(result.stdout)["scale_workload"]
    assert step["status"] == "failed" and step["attempts"] == 1, "Forbidden is permanent: not retried"
    assert (
        f'Error from server (Forbidden): deployments.apps "web" is forbidden: User "{WORKER}" cannot update '
        f'resource "deployments/scale" in API group "apps" in the namespace "{NAMESPACE}"'
    ) in step["error"]
    assert by_action(result.stdout)["update_resources"]["status"] == "succeeded"
    assert world.replicas("web") == 2
    assert "Traceback" not in result.stdout + result.stderr


def test_an_hpa_that_scales_on_its_metric_is_drift_for_rollback(world: World) -> None:
    assert apply(world).returncode == 0
    assert world.replicas("web") == 4
    # 140 % of the 70 % target at 4 pods: the HPA doubles the deployment, within maxReplicas 8
    world.kube.server.set_metric(NAMESPACE, "web", 140)
    assert _wait(lambda: world.replicas("web") == 8)
    hpa = world.hpa("web")
    assert hpa is not None and hpa["status"]["desiredReplicas"] == 8

    result = rollback(world)

    assert result.returncode == 1, result.stdout + result.stderr
    steps = by_action(result.stdout)
    assert steps["scale_workload"]["status"] == "drifted"
    assert steps["update_resources"]["status"] == "succeeded"
    assert world.replicas("web") == 8, "replicas the HPA chose are not overwritten without --force"
