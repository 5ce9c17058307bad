"""Steps that differ only in their object share one kubectl call, and a step that call did not confirm runs
alone: real kubectl against the sandbox, counted by the kubectl processes that reached the server."""

from core.record import STAMP_FIELD_MANAGER
from tests.execution.conftest import APP, NAMESPACE, World
from tests.execution.test_lifecycle import summary_of
from tests.execution.test_scenarios import apply, rollback

NAMES = ["w1", "w2", "w3", "w4"]
PLAN = f"namespace: {NAMESPACE}\ntarget: prod\nactions:\n" + "".join(
    f"  - {{type: scale_workload, name: {name}, replicas: 3}}\n"
    f"  - {{type: update_resources, name: {name}, container: app, requests: {{cpu: 300m}}, limits: {{cpu: 600m}}}}\n"
    f"  - {{type: apply_hpa, name: {name}, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 70}}\n"
    for name in NAMES)


def with_workloads(world: World) -> World:
    for name in NAMES:
        world.kube.create_deployment(NAMESPACE, name, replicas=2, containers=[APP])
    world.write_plan(PLAN)
    world.kube.clear_requests()
    return world


def step_results(stdout: str, kind: int) -> list[dict]:  # type: ignore[type-arg]
    """The results of one kind of step (0 scale, 1 resources, 2 HPA), one per workload in NAMES order."""
    by_number = {result["step"]: result for result in summary_of(stdout)["results"]}
    return [by_number[3 * index + kind + 1] for index in range(len(NAMES))]


def processes(world: World, command: str) -> int:
    """The `kubectl <command>` processes that reached the server, the record stamp's `kubectl patch` and the lock's
    calls left out."""
    requests = world.kube.requests()
    bookkeeping = {r["session"] for r in requests
                   if r["field_manager"] == STAMP_FIELD_MANAGER or "/leases" in r["path"]}
    return len({r["session"] for r in requests if r["session"] and r["command"].startswith(f"kubectl {command}")
                and r["session"] not in bookkeeping})


def test_one_call_per_kind_of_step_on_the_way_there_and_back(world: World) -> None:
    with_workloads(world)

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    results = summary_of(applied.stdout)["results"]
    assert [(r["status"], r.get("batch")) for r in results[:12]] == [("succeeded", 4)] * 12
    # a batched scale is `patch --subresource=scale -f -` (objects on stdin are not throttled by kubectl)
    assert (processes(world, "scale"), processes(world, "patch"), processes(world, "set"),
            processes(world, "apply")) == (0, 1, 1, 1)
    # the verify steps: rolled out as read after the changes (no call), or watched by one shared call
    watched = processes(world, "rollout")
    assert watched in (0, 1)
    assert [(r["status"], r.get("batch")) for r in results[12:]] == [("succeeded", 4 if watched else None)] * 4
    assert world.kube.kubectl_invocations(field_manager=STAMP_FIELD_MANAGER) == 1, \
        "one stamp call before the first change; the new HPAs carry the stamp from their creation"
    assert all(world.replicas(name) == 3 for name in NAMES)
    assert all(world.resources(name) == {**APP["resources"], "requests": {"cpu": "300m", "memory": "128Mi"},
                                         "limits": {"cpu": "600m"}} for name in NAMES)
    assert all((world.hpa(name) or {}).get("spec", {}).get("maxReplicas") == 8 for name in NAMES)
    world.kube.clear_requests()

    undone = rollback(world)

    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert [(r["status"], r.get("batch")) for r in summary_of(undone.stdout)["results"]] == [("succeeded", 4)] * 16
    # resources and replicas are both restored by `patch -f -` calls (replicas with a `test` of the applied count)
    assert (processes(world, "delete"), processes(world, "patch"), processes(world, "scale"),
            processes(world, "rollout")) == (1, 2, 0, 1)
    assert all(world.replicas(name) == 2 and world.resources(name) == APP["resources"] and world.hpa(name) is None
               for name in NAMES)


def test_what_a_shared_call_did_not_confirm_runs_alone_retried_only_when_transient(world: World) -> None:
    with_workloads(world)
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/w2/scale$", status=500, count=1)  # shared
    world.kube.faults.add(method="PUT", path_regex=r"/deployments/w2/scale$", status=500, count=1)  # alone
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/w3$", command="kubectl set", status=404, count=2,
                          message='deployments.apps "w3" not found')

    applied = apply(world)

    assert applied.returncode == 1
    scales, resources, hpas = (step_results(applied.stdout, kind) for kind in range(3))
    # `patch -f -` goes on past w2's 500: w1, w3 and w4 are confirmed by the shared call, w2 runs alone (`scale
    # --current-replicas`: a GET, then a PUT), fails once more and succeeds on its third try, counting the shared
    # call's.
    assert [(r["status"], r["attempts"], r.get("batch")) for r in scales] == [
        ("succeeded", 1, 4), ("succeeded", 3, None), ("succeeded", 1, 4), ("succeeded", 1, 4)]
    # The 404 on w3 fails in the shared call and once alone, never retried; w3's HPA step is then skipped.
    assert [(r["status"], r["attempts"]) for r in resources] == [("succeeded", 1)] * 2 + [("failed", 2),
                                                                                         ("succeeded", 1)]
    assert "not found" in resources[2]["error"]
    assert [r["status"] for r in hpas] == ["succeeded", "succeeded", "skipped", "succeeded"]
    assert world.hpa("w3") is None and world.resources("w3") == APP["resources"]
    assert all(world.replicas(name) == 3 for name in NAMES)

    undone = rollback(world)  # only what ran is reversed

    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert all(world.replicas(name) == 2 and world.resources(name) == APP["resources"] and world.hpa(name) is None
               for name in NAMES)


def test_a_waves_record_save_does_not_hold_back_the_next_waves_calls(world: World) -> None:
    """The record's save after a wave runs beside the next wave on a task thread of its own: the 4 calls a wave of
    40 resources steps is spread over all start at once, though the save is slower than each of them."""
    names = [f"app-{index:02d}" for index in range(40)]
    for name in names:
        world.kube.create_deployment(NAMESPACE, name, replicas=2, containers=[APP], wait=False)
    world.kube.fast_forward()
    world.write_plan(f"namespace: {NAMESPACE}\ntarget: prod\nactions:\n" + "".join(
        f"  - {{type: scale_workload, name: {name}, replicas: 3}}\n"
        f"  - {{type: update_resources, name: {name}, container: app, limits: {{cpu: 600m}}}}\n" for name in names))
    # the first save's replace (404: no record yet, then created) and wave 1's save take 6 s each; every PATCH of
    # the resources wave 0.3 s, 3 s for a call of 10
    world.kube.faults.add(method="PUT", path_regex=r"/configmaps/infra-record-", latency_s=6, count=2)
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/app-\d+$", command="kubectl set", latency_s=0.3)
    world.kube.clear_requests()

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    calls: dict[str, list[float]] = {}
    for request in world.kube.requests():
        if request["command"] == "kubectl set resources":
            calls.setdefault(request["session"], []).append(request["time"])
    assert len(calls) == 4
    assert max(min(times) for times in calls.values()) < min(max(times) for times in calls.values()), \
        "a call of the wave waited for a thread until another one ended"
