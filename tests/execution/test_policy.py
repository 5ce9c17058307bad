"""Policy checks through the CLI and the flows: real kubectl reads the namespace's ResourceQuota, LimitRange and
PodDisruptionBudget from the sandbox, the flows run on a real Prefect server, the PR lives on the GitHub test
server. `INFRA_POLICY=block` refuses the apply and fails `infra/plan`; the default only warns."""

import json

from tests.execution.conftest import NAMESPACE, REPO, World

HPA_PLAN = f"""\
namespace: {NAMESPACE}
target: prod
actions:
  - {{type: apply_hpa, name: web, minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70}}
"""
QUOTA_FINDING = ("resourcequota/compute: pods 3 of 6 → 11 of 6 after the plan (HPA-managed workloads at their "
                 "maxReplicas); pods beyond the quota will be refused")


def _create(world: World, obj: dict) -> None:  # type: ignore[type-arg]
    created = world.kube.kubectl("create", "-n", NAMESPACE, "-f", "-", input=json.dumps(obj))
    assert created.returncode == 0, created.stderr


def _quota(world: World, hard: dict[str, str]) -> None:
    _create(world, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
                    "spec": {"hard": hard}})


def test_a_quota_finding_blocks_the_apply_with_block_and_only_warns_by_default(world: World) -> None:
    _quota(world, {"pods": "6"})
    world.write_plan(HPA_PLAN)
    world.label("execute-plan")

    blocked = world.cli("apply", "--execute", f"--pr={world.pr}", INFRA_POLICY="block")

    assert blocked.returncode == 0, blocked.stdout + blocked.stderr
    lines = blocked.stdout.splitlines()
    assert lines[-2:] == [f"Refusing to execute: policy: {QUOTA_FINDING}.", "skipped"], blocked.stdout
    assert world.hpa("web") is None, "nothing reached the cluster"

    warned = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert f"note: policy: {QUOTA_FINDING}" in warned.stdout.splitlines()
    assert warned.stdout.splitlines()[-1] == "succeeded"
    hpa = world.hpa("web")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 10
    comments = [c.body for c in world.github.comments[REPO].values()
                if c.body.startswith("<!-- infra-orchestrator:apply")]
    assert any("policy: resourcequota/compute: pods 3 of 6 → 11 of 6 after the plan" in body for body in comments)


def test_a_bad_infra_policy_is_bad_input(world: World) -> None:
    result = world.cli("apply", "--execute", f"--pr={world.pr}", INFRA_POLICY="strict")

    assert result.returncode == 2
    assert result.stderr.strip() == "error: INFRA_POLICY: policy: 'strict' is not one of warn, block"


def test_a_limit_range_refuses_the_apply_with_block(world: World) -> None:
    _create(world, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "bounds"},
                    "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}})
    world.write_plan(f"""\
namespace: {NAMESPACE}
target: prod
actions:
  - {{type: update_resources, name: api, container: app, requests: {{cpu: 500m}}, limits: {{cpu: "2"}}}}
""")
    world.label("execute-plan")
    before = world.resources("api")

    result = world.cli("apply", "--execute", f"--pr={world.pr}", INFRA_POLICY="block")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "Refusing to execute: policy: limitrange/bounds: deployment/api container app limits.cpu 2 is above the "
        "maximum 1 per Container; its pods will be refused.", "skipped"], result.stdout
    assert world.resources("api") == before


PDB_PLAN = f"""\
namespace: {NAMESPACE}
target: prod
actions:
  - {{type: scale_workload, name: web, replicas: 1}}
"""
PDB_FINDING = ("poddisruptionbudget/web: deployment/web goes to 1 pod (from 2), below its minAvailable 2; no pod may "
               "be evicted and node drains will block")


def test_a_pdb_finding_is_a_plan_warning_and_with_block_fails_infra_plan(world: World) -> None:
    _create(world, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
                    "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    world.write_plan(PDB_PLAN)

    printed = world.cli("plan")

    assert printed.returncode == 0, printed.stdout + printed.stderr
    assert f"warning: policy: {PDB_FINDING}" in printed.stdout.splitlines()
    reads = [r for r in world.kube.requests() if r["method"] == "GET" and r["path"].endswith(
        ("/resourcequotas", "/limitranges", "/poddisruptionbudgets"))]
    assert len({r["session"] for r in reads}) == 1, "the policy objects come with the workloads, one kubectl get"

    commented = world.cli("plan", f"--pr={world.pr}", INFRA_POLICY="block")

    assert commented.returncode == 1, commented.stdout + commented.stderr
    assert f"error: policy: {PDB_FINDING}" in commented.stdout.splitlines()
    status = world.github.latest_statuses(REPO, world.github.head_sha(REPO, world.pr))["infra/plan"]
    assert (status.state, status.description) == ("failure", "1 policy finding blocks the apply (INFRA_POLICY=block)")
    [body] = [c.body for c in world.github.comments[REPO].values() if c.body.startswith("<!-- infra-orchestrator:plan")]
    assert "deployment/web goes to 1 pod (from 2), below its minAvailable 2" in body


def test_with_warn_a_plan_past_the_quota_applies_and_its_rollout_fails_as_in_a_cluster(world: World) -> None:
    _quota(world, {"requests.cpu": "500m"})  # web 2 x 100m and api 100m use 300m
    deadline = world.kube.kubectl("patch", "-n", NAMESPACE, "deployment/web", "-p",
                                  '{"spec":{"progressDeadlineSeconds":2}}')
    assert deadline.returncode == 0, deadline.stderr
    world.write_plan(f"""\
namespace: {NAMESPACE}
target: prod
actions:
  - {{type: update_resources, name: web, container: app, requests: {{cpu: 300m}}, limits: {{cpu: 600m}}}}
""")
    world.label("execute-plan")

    result = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "note: policy: resourcequota/compute: requests.cpu 0.3 of 0.5 → 0.7 of 0.5 after the plan (HPA-managed " \
           "workloads at their maxReplicas); pods beyond the quota will be refused" in lines
    assert "change: deployment/web app requests.cpu: 100m → 300m (succeeded, 1 attempt," in result.stdout
    assert 'deployment \\"web\\" exceeded its progress deadline' in result.stdout, result.stdout
    assert lines[-1] == "failed"
    refused = [c["message"] for rs in world.kube.list_objects("rs", NAMESPACE)
               for c in (rs.get("status") or {}).get("conditions") or [] if c["type"] == "ReplicaFailure"]
    assert len(refused) == 1 and refused[0].endswith(
        "is forbidden: exceeded quota: compute, requested: requests.cpu=300m, used: requests.cpu=300m, limited: "
        "requests.cpu=500m"), refused


def test_the_apply_preview_computes_the_policy_findings_as_infra_plan_does(world: World) -> None:
    _create(world, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
                    "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    world.write_plan(PDB_PLAN)

    warned = world.cli("apply")

    assert warned.returncode == 0, warned.stdout + warned.stderr
    lines = warned.stdout.splitlines()
    assert f"note: policy: {PDB_FINDING}" in lines, warned.stdout
    assert not any(line.startswith("note: executing would refuse") for line in lines)
    assert world.replicas("web") == 2

    blocked = world.cli("apply", INFRA_POLICY="block")

    assert blocked.returncode == 0, blocked.stdout + blocked.stderr
    assert f"note: executing would refuse: policy: {PDB_FINDING}" in blocked.stdout.splitlines(), blocked.stdout
    assert "previewed: nothing changed" in blocked.stdout.splitlines()
    assert world.replicas("web") == 2
