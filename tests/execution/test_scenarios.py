"""The scenarios issue 5 asks to prove, each through the CLI with real kubectl against the sandbox cluster."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.execution.conftest import NAMESPACE, PLAN_PATH, REPO, World
from tests.execution.test_lifecycle import summary_of

ORIGINAL_API = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m"}}


def by_action(stdout: str, flow_type: str = "action") -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["action"]: r for r in summary_of(stdout)["results"] if r["type"] == flow_type}


def apply(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    world.label("execute-plan")
    return world.cli("apply", "--execute", f"--pr={world.pr}", *args)


def rollback(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    world.label("rollback-plan")
    return world.cli("rollback", "--execute", f"--pr={world.pr}", *args)


def test_a_changed_hpa_is_restored_not_deleted(world: World) -> None:
    world.kube.create_hpa(NAMESPACE, "web", target="web", min_replicas=2, max_replicas=6)
    assert apply(world).returncode == 0
    hpa = world.hpa("web")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)

    result = rollback(world)

    assert result.returncode == 0, result.stdout + result.stderr
    hpa = world.hpa("web")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert by_action(result.stdout)["apply_hpa"]["command"] == f"kubectl -n {NAMESPACE} replace -f -"


def test_drift_is_reported_and_skipped_unless_forced(world: World) -> None:
    assert apply(world).returncode == 0
    world.kube.kubectl("-n", NAMESPACE, "set", "resources", "deployment/api", "-c=app", "--limits=cpu=900m", check=True)

    result = rollback(world)

    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "failed"
    steps = by_action(result.stdout)
    assert steps["update_resources"]["status"] == "drifted"
    assert "rerun with --force" in steps["update_resources"]["error"]
    assert steps["scale_workload"]["status"] == "succeeded"
    assert world.resources("api")["limits"] == {"cpu": "900m"}, "a drifted object is left alone"
    assert world.replicas("web") == 2

    forced = rollback(world, "--force")

    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert world.resources("api") == ORIGINAL_API


def test_an_unrelated_deploy_after_apply_is_drift(world: World) -> None:
    assert apply(world).returncode == 0
    world.kube.kubectl("-n", NAMESPACE, "set", "image", "deployment/api", "app=shop/app:2.0", check=True)

    result = rollback(world)

    assert by_action(result.stdout)["update_resources"]["status"] == "drifted"
    assert world.deployment("api")["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/app:2.0"


def test_transient_failures_are_retried_and_a_404_is_not(world: World) -> None:
    world.kube.faults.add(method="PUT", path_regex=r"/deployments/web/scale$", status=500, count=2)
    world.kube.faults.add(
        method="PATCH", path_regex=r"/deployments/api$", command="kubectl set", status=404, count=1,
        message='deployments.apps "api" not found')

    result = apply(world)

    assert result.returncode == 1
    steps = by_action(result.stdout)
    assert (steps["scale_workload"]["status"], steps["scale_workload"]["attempts"]) == ("succeeded", 3)
    assert (steps["update_resources"]["status"], steps["update_resources"]["attempts"]) == ("failed", 1)
    assert "not found" in steps["update_resources"]["error"]
    assert world.replicas("web") == 4 and world.resources("api") == ORIGINAL_API

    undone = rollback(world)  # partial failure: only the steps that ran are reversed

    assert undone.returncode == 0, undone.stdout + undone.stderr
    steps = by_action(undone.stdout)
    assert steps["update_resources"]["status"] == "unchanged"
    assert steps["scale_workload"]["status"] == steps["apply_hpa"]["status"] == "succeeded"
    assert world.replicas("web") == 2 and world.hpa("web") is None


def test_replicas_of_an_hpa_managed_workload_are_not_fought_over(world: World) -> None:
    world.kube.create_hpa(NAMESPACE, "api", target="api", min_replicas=1, max_replicas=3)
    world.write_plan(f"namespace: {NAMESPACE}\nactions:\n  - {{type: scale_workload, name: api, replicas: 5}}\n")
    world.kube.clear_requests()

    result = apply(world)

    assert result.returncode == 1
    assert "error: deployment/api is managed by hpa/api: change its HPA bounds in the plan (apply_hpa) instead of " \
           "its replicas; nothing was changed" in result.stdout.splitlines()
    assert "?" not in result.stdout and '"executed": true' not in result.stdout, "a stop before any change"
    assert world.replicas("api") == 1
    assert world.kube.count_requests(method="PATCH") == 0


def test_atomic_apply_rolls_back_what_it_applied(world: World) -> None:
    world.kube.faults.add(
        method="POST", path_regex=r"/horizontalpodautoscalers$", status=403, count=1, message="forbidden by policy"
    )

    result = apply(world, "--atomic")

    assert result.returncode == 1
    undone = by_action(result.stdout, "rollback")
    assert {undone[a]["status"] for a in ("scale_workload", "update_resources")} == {"succeeded"}
    assert world.replicas("web") == 2 and world.resources("api") == ORIGINAL_API
    record = json.loads((world.root / PLAN_PATH).with_name("plan.record.json").read_text())
    assert record["status"] == "rolled-back"


def test_kill_9_mid_apply_then_rerun_finishes_without_repeating_steps(world: World) -> None:
    world.kube.faults.add(method="POST", path_regex=r"/horizontalpodautoscalers$", latency_s=30, count=1)
    world.label("execute-plan")
    command = [str(Path(sys.executable).parent / "infra-apply"), f"--plan={PLAN_PATH}", "--execute", f"--pr={world.pr}"]
    victim = subprocess.Popen(
        command,
        cwd=world.root,
        env=world.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while world.kube.count_requests(method="POST", path_regex=r"/horizontalpodautoscalers$") == 0:
        assert time.monotonic() < deadline and victim.poll() is None, "apply never reached the HPA step"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    world.kube.faults.clear()
    assert "execute-plan" not in world.github.labels_of(REPO, world.pr), "claimed before the first change"
    world.label("execute-plan")  # one label, one run: the person labels again to finish it

    rerun = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "note: resuming an interrupted apply" in rerun.stdout
    assert world.replicas("web") == 4 and world.hpa("web") is not None
    assert world.kube.count_requests(method="PUT", path_regex=r"/deployments/web/scale$") == 1, "not repeated"
    record = json.loads((world.root / PLAN_PATH).with_name("plan.record.json").read_text())
    assert record["status"] == "succeeded"
    # "succeeded" if the killed run stored its progress before dying, "unchanged" if the rerun found it live
    assert {step["status"] for step in record["steps"]} <= {"unchanged", "succeeded"}
    assert record["steps"][0]["before"]["replicas"] == 2, "the first run's capture is kept"

    undone = rollback(world)
    assert undone.returncode == 0 and world.replicas("web") == 2 and world.hpa("web") is None


def test_two_applies_on_one_namespace_do_not_interleave(world: World) -> None:
    second = world.root / "ops/plans/infra-scale/canary/plan.yaml"
    second.parent.mkdir(parents=True)
    second.write_text(f"namespace: {NAMESPACE}\nactions:\n  - {{type: scale_workload, name: api, replicas: 3}}\n")
    other_pr = world.github.open_pr(
        REPO,
        head="infra-scale/canary",
        author="alice",
        files={"ops/plans/infra-scale/canary/plan.yaml": second.read_text()},
    )
    world.github.add_label(REPO, other_pr, "execute-plan", "alice")
    world.kube.faults.add(method="PUT", path_regex=r"/deployments/web/scale$", latency_s=8, count=1)
    world.label("execute-plan")
    first = subprocess.Popen(
        [str(Path(sys.executable).parent / "infra-apply"), f"--plan={PLAN_PATH}", "--execute", f"--pr={world.pr}"],
        cwd=world.root,
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    while (world.kube.get("Lease", NAMESPACE, "infra-orchestrator-lock") or {}).get("spec", {}).get(
        "holderIdentity"
    ) is None:
        assert time.monotonic() < deadline and first.poll() is None, "the first apply never took the lock"
        time.sleep(0.2)

    later = world.cli("apply", "--execute", f"--pr={other_pr}", "--plan=ops/plans/infra-scale/canary/plan.yaml")
    first_out, _ = first.communicate(timeout=240)

    assert first.returncode == 0 and later.returncode == 0, first_out + later.stdout
    log = world.kube.requests()
    web_patch = next(r["seq"] for r in log if r["method"] == "PUT" and r["path"].endswith("/deployments/web/scale"))
    api_patch = next(r["seq"] for r in log if r["method"] == "PUT" and r["path"].endswith("/deployments/api/scale"))
    released = next(
        r["seq"] for r in log if r["method"] == "DELETE" and r["path"].endswith("/leases/infra-orchestrator-lock")
    )
    assert web_patch < released < api_patch, "the second apply ran its step only after the first released the lock"
    assert world.replicas("api") == 3 and world.replicas("web") == 4


def test_a_write_the_server_commits_after_kubectl_gave_up_is_not_sent_again(world: World) -> None:
    """Chaos seed 41: the server holds the scale PUT and commits it 1.5 s after kubectl was killed for timing
    out. The retry must not read the object before that, or it re-sends a write that then lands twice."""
    late = world.kube.faults.add(method="PUT", path_regex=r"/deployments/web/scale$", latency_s=3.5, count=1)

    world.label("execute-plan")
    result = world.cli("apply", "--execute", f"--pr={world.pr}", INFRA_KUBECTL_TIMEOUT="2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert late.fired == 1 and world.replicas("web") == 4
    landed = [r for r in world.kube.requests() if r["method"] == "PUT" and r["path"].endswith("/web/scale")
              and 200 <= r["status"] < 300]
    assert len(landed) == 1, f"the scale landed {len(landed)} times"
    # the server commits the held write at the request's own timeout, the moment kubectl gives up: on a loaded
    # machine its answer sometimes arrives first (one attempt); otherwise the retry's read confirms it (two)
    assert by_action(result.stdout)["scale_workload"]["attempts"] in (1, 2)


def test_a_write_that_lands_after_its_timeout_is_confirmed_not_sent_again(world: World) -> None:
    """The scale PUT commits, but its answer comes only after kubectl gave up waiting (2 s): the retry reads the
    object, finds the write landed and does not send it again. In rollback, re-sending `scale --current-replicas`
    would fail against its own first write. (Served at once and answered late, so the outcome does not hang on
    how fast a loaded machine starts kubectl.)"""
    late = world.kube.faults.add(method="PUT", path_regex=r"/deployments/web/scale$", answer_late_s=5, count=1)
    timeout = {"INFRA_KUBECTL_TIMEOUT": "2"}

    world.label("execute-plan")
    result = world.cli("apply", "--execute", f"--pr={world.pr}", **timeout)

    assert result.returncode == 0, result.stdout + result.stderr
    assert by_action(result.stdout)["scale_workload"]["attempts"] == 2
    assert world.replicas("web") == 4
    landed = [r for r in world.kube.requests() if r["method"] == "PUT" and r["path"].endswith("/web/scale")
              and 200 <= r["status"] < 300]
    assert len(landed) == 1 and late.fired == 1, f"the scale was sent {len(landed)} times"

    world.label("rollback-plan")
    late = world.kube.faults.add(method="PUT", path_regex=r"/deployments/web/scale$", answer_late_s=5, count=1)
    undone = world.cli("rollback", "--execute", f"--pr={world.pr}", **timeout)

    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert by_action(undone.stdout)["scale_workload"]["status"] == "succeeded"
    assert world.replicas("web") == 2 and world.hpa("web") is None
    assert late.fired == 1, "the rollback's scale write was the one answered late"
