"""Issue 13 item 8 through the real parts: replicas raised by an HPA the plan created are restored by rollback,
OnDelete StatefulSets are verified from their status (kubectl refuses `rollout status` for them), and `--force`
undoes drifted replicas. CLI through real kubectl against the sandbox, and the Prefect flow in-process."""

import json
import os
import time
from typing import Any

import pytest

from core.report import RunReport
from tests.execution.conftest import NAMESPACE, PLAN_PATH, World
from tests.execution.test_lifecycle import summary_of
from tests.execution.test_scenarios import apply, by_action, rollback
from tests.execution.test_strict_cluster import _wait

DB_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "200m"}}


def results(stdout: str, flow_type: str) -> list[dict[str, Any]]:
    return [r for r in summary_of(stdout)["results"] if r["type"] == flow_type]


def record_of(world: World) -> dict[str, Any]:
    return json.loads(world.plan.with_name("plan.record.json").read_text())  # type: ignore[no-any-return]


def on_delete_statefulset(world: World, replicas: int) -> dict[str, Any]:
    world.kube.create({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": NAMESPACE},
        "spec": {"replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "updateStrategy": {"type": "OnDelete"},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                     {"name": "app", "image": "shop/db:1.0", "resources": DB_RESOURCES}]}}}})
    world.kube.fast_forward()
    return statefulset(world)


def statefulset(world: World) -> dict[str, Any]:
    found = world.kube.get("StatefulSet", NAMESPACE, "db")
    assert found is not None, "statefulset db is gone"
    return found


def pod_resources(world: World) -> dict[str, dict[str, Any]]:
    return {pod["metadata"]["name"]: pod["spec"]["containers"][0]["resources"]
            for pod in world.kube.list_objects("pods", NAMESPACE, "app=db")}


def test_rollback_deletes_a_created_hpa_and_restores_the_replicas_it_raised(world: World) -> None:
    world.write_plan(f"namespace: {NAMESPACE}\ntarget: prod\nactions:\n"
                     "  - {type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8}\n")
    spec_before = world.deployment("web")["spec"]

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _wait(lambda: world.replicas("web") == 3), "the sandbox's HPA controller raises web to minReplicas"
    hpa = world.hpa("web")
    assert hpa is not None and hpa["status"]["desiredReplicas"] == 3 and "lastScaleTime" in hpa["status"]
    assert record_of(world)["steps"][0]["before"] == {"target_replicas": 2}, "the HPA did not exist: its target's"
    world.kube.clear_requests()

    undone = rollback(world)

    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert [(r["status"], r["command"]) for r in results(undone.stdout, "action")] == [
        ("succeeded", f"kubectl -n {NAMESPACE} delete hpa web"),
        ("succeeded", f"kubectl -n {NAMESPACE} scale deployment/web --replicas=2 --current-replicas=3")]
    assert [(r["status"], r["note"]) for r in results(undone.stdout, "verify")] == [
        ("succeeded", "deployment/web rolled out")], "the scale back is a replica change: its rollout is verified"
    assert world.hpa("web") is None
    world.kube.settle()
    spec_after = world.deployment("web")["spec"]
    assert {key: spec_after[key] for key in spec_before} == spec_before, "every field of the spec as before apply"
    assert spec_after["replicas"] == 2
    assert world.kube.count_requests(method="DELETE", path_regex=r"/horizontalpodautoscalers/web$") == 1
    scale_writes = [r["method"] for r in world.kube.requests()
                    if r["path"].endswith("/deployments/web/scale") and r["method"] != "GET"]
    assert scale_writes == ["PUT"], "one write; kubectl sends a precondition (--current-replicas) as a PUT"


@pytest.mark.parametrize(("rollout_s", "watched"), [(0.0, 0), (4.0, 1)])
def test_apply_watches_only_the_rollouts_its_after_read_shows_unfinished(
        world: World, rollout_s: float, watched: int) -> None:
    """The objects read after the changes (the record's after-states) show which rollouts are done, by kubectl's
    own rule (core.rollout): those need no `rollout status` call; those still rolling out share one call."""
    world.kube.server.controllers.rollout_delay = rollout_s
    world.kube.clear_requests()

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    verified = results(applied.stdout, "verify")
    assert [(r["command"].split()[-2], r["status"]) for r in verified] == [
        ("deployment/web", "succeeded"), ("deployment/api", "succeeded")]
    assert world.kube.kubectl_invocations("kubectl rollout status") == watched
    assert all(r.get("batch") == (2 if watched else None) for r in verified)


def test_an_on_delete_statefulset_is_verified_from_its_status_not_rollout_status(world: World) -> None:
    before = on_delete_statefulset(world, replicas=2)
    world.write_plan(f"namespace: {NAMESPACE}\ntarget: prod\nactions:\n"
                     "  - {type: update_resources, kind: StatefulSet, name: db, container: app,"
                     " requests: {cpu: 300m}, limits: {cpu: 600m}}\n")
    world.kube.clear_requests()

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    [verify] = results(applied.stdout, "verify")
    assert verify["status"] == "succeeded"
    assert verify["command"] == f"kubectl -n {NAMESPACE} get statefulset/db -o json"
    assert verify["note"] == ("statefulset/db verified from status (updateStrategy OnDelete): 2 of 2 replicas ready; "
                              "pods on the previous template until deleted: 2")
    assert world.kube.count_requests(command="kubectl rollout status") == 0
    status = statefulset(world)["status"]
    assert status["updateRevision"] != status["currentRevision"] and status["updatedReplicas"] == 0
    assert pod_resources(world) == {"db-0": DB_RESOURCES, "db-1": DB_RESOURCES}, "OnDelete: pods are not replaced"

    undone = rollback(world)

    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert [r["status"] for r in results(undone.stdout, "verify")] == ["succeeded"]
    assert world.kube.count_requests(command="kubectl rollout status") == 0
    after = statefulset(world)
    assert after["spec"]["template"] == before["spec"]["template"]
    assert after["spec"]["replicas"] == before["spec"]["replicas"] == 2


def test_an_on_delete_statefulset_that_never_gets_ready_fails_verification_within_the_timeout(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the Prefect flow in-process, where the rollout timeout is a parameter: resources first, then a
    scale, so the new pod db-1 gets the new template and its 12 CPUs do not fit the sandbox node's 8."""
    from flows.apply import infra_apply

    on_delete_statefulset(world, replicas=1)
    world.write_plan(f"namespace: {NAMESPACE}\ntarget: prod\nactions:\n"
                     "  - {type: update_resources, kind: StatefulSet, name: db, container: app,"
                     " requests: {cpu: '12'}, limits: {cpu: '12'}}\n"
                     "  - {type: scale_workload, kind: StatefulSet, name: db, replicas: 2}\n")
    for key in set(os.environ) - set(world.env):
        monkeypatch.delenv(key)
    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(world.root)
    world.label("execute-plan")
    world.kube.clear_requests()
    started = time.monotonic()

    state = infra_apply(plan=PLAN_PATH, pr=world.pr, execute=True, rollout_timeout_s=3, return_state=True)

    assert state.is_failed()
    report = state.result(raise_on_failure=False)

    assert isinstance(report, RunReport) and report.document is not None, report
    assert report.final == "failed", report.render()
    [verify] = [r for r in report.document["results"] if r["type"] == "verify"]
    assert verify["status"] == "failed"
    assert verify["error"] == "statefulset/db (updateStrategy OnDelete) not ready after 3s: 1 of 2 replicas ready"
    assert 3000 <= verify["duration_ms"] < 6000, "it waits the rollout timeout, and not much longer"
    assert time.monotonic() - started < 60
    assert world.kube.count_requests(command="kubectl rollout status") == 0
    pending = next(p for p in world.kube.list_objects("pods", NAMESPACE, "app=db") if p["metadata"]["name"] == "db-1")
    assert pending["status"]["phase"] == "Pending"


def test_force_undoes_drifted_replicas_from_the_record(world: World) -> None:
    assert apply(world).returncode == 0
    world.kube.kubectl("-n", NAMESPACE, "scale", "deployment/web", "--replicas=6", check=True)  # within hpa/web's 3..8

    unforced = rollback(world)

    assert unforced.returncode == 1, unforced.stdout + unforced.stderr
    assert by_action(unforced.stdout)["scale_workload"]["status"] == "drifted"
    assert world.replicas("web") == 6 and world.hpa("web") is None

    forced = rollback(world, "--force")

    assert forced.returncode == 0, forced.stdout + forced.stderr
    step = by_action(forced.stdout)["scale_workload"]
    assert (step["status"], step["command"]) == (
        "succeeded", f"kubectl -n {NAMESPACE} scale deployment/web --replicas=2 --current-replicas=6"), \
        "preconditioned on the live count, not on the applied 4"
    assert world.replicas("web") == 2
