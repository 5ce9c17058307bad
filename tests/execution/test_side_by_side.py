"""Bookkeeping that does not depend on what came before runs beside it, through the CLI with real kubectl against
the sandbox: a slowed request shows whether the next one waited for it."""

from tests.execution.conftest import NAMESPACE, World
from tests.execution.test_scenarios import apply, rollback

SLOW_S = 2.5


def arrival(world: World, method: str, path_part: str) -> float:
    """When the first such request reached the sandbox."""
    return min(float(r["time"]) for r in world.kube.requests() if r["method"] == method and path_part in r["path"])


def test_the_rollback_reads_its_record_while_it_captures_the_objects(world: World) -> None:
    assert apply(world).returncode == 0
    world.kube.faults.add(method="GET", path_regex=r"/configmaps/infra-record-", latency_s=SLOW_S, count=1)
    world.kube.clear_requests()

    undone = rollback(world)

    assert undone.stdout.splitlines()[-1] == "succeeded", undone.stdout + undone.stderr
    assert world.replicas("web") == 2
    record_read = arrival(world, "GET", "/configmaps/infra-record-")
    capture = arrival(world, "GET", f"/namespaces/{NAMESPACE}/deployments")
    assert abs(capture - record_read) < SLOW_S - 1, "one read waited for the other"


def test_the_lock_is_released_while_the_report_is_published(world: World) -> None:
    """The release starts once the record is final; the PR's update (its audit comment slowed here) goes on
    beside it, and the run still ends with the Lease gone."""
    world.github.inject("POST", r"/issues/\d+/comments$", status=None, latency=SLOW_S)
    world.kube.clear_requests()

    applied = apply(world)

    assert applied.stdout.splitlines()[-1] == "succeeded", applied.stdout + applied.stderr
    [commented] = world.github.requests("POST", f"/issues/{world.pr}/comments$")
    released = arrival(world, "DELETE", "/leases/infra-orchestrator-lock")
    final_save = max(r["time"] for r in world.kube.requests() if r["method"] == "PUT" and "/configmaps/" in r["path"])
    assert final_save < released < commented.at - 1, "the release waited for the PR's update"
    assert world.kube.list_objects("Lease", NAMESPACE) == []
