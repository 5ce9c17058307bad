"""core.policy: the findings a plan gets from the namespace's quotas, LimitRanges, PDBs and HPAs (pure)."""

from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from core.plan import Action, ApplyHpa, HpaBounds, Plan, ScaleWorkload, UpdateResources, Workload
from core.policy import Finding, PolicyMode, chosen_mode, findings_for, policy_mode, refusal, unread_item

WEB = Workload("Deployment", "web")


def _plan(*actions: Action) -> Plan:
    return Plan(Path("plan.yaml"), "shop", None, tuple(actions), (), None)


def _deployment(name: str = "web", replicas: int = 3, cpu: str = "500m", memory: str = "256Mi",
                limit_cpu: str | None = "1") -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": memory}}
    if limit_cpu is not None:
        resources["limits"] = {"cpu": limit_cpu}
    return {"kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "app", "image": "nginx", "resources": resources}]}}}}


def _quota(hard: dict[str, str], used: dict[str, str] | None = None) -> dict[str, Any]:
    quota: dict[str, Any] = {"kind": "ResourceQuota", "metadata": {"name": "compute"}, "spec": {"hard": hard}}
    if used is not None:
        quota["status"] = {"hard": hard, "used": used}
    return quota


def _hpa(low: int, high: int, target: str = "web") -> dict[str, Any]:
    return {"kind": "HorizontalPodAutoscaler", "metadata": {"name": target},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": target}, "minReplicas": low,
                     "maxReplicas": high}}


def _texts(findings: list[Finding]) -> list[str]:
    return [finding.text for finding in findings]


def test_quota_finding_gives_the_figures_before_and_after() -> None:
    live = [_deployment(replicas=3), _quota({"requests.cpu": "8", "pods": "20"},
                                            {"requests.cpu": "7500m", "pods": "15"})]
    found = findings_for(_plan(ScaleWorkload(WEB, 6)), live)
    assert _texts(found) == [
        "resourcequota/compute: requests.cpu 7.5 of 8 → 9 of 8 after the plan (HPA-managed workloads at their "
        "maxReplicas); pods beyond the quota will be refused"]
    assert found[0].obj == "resourcequota/compute" and found[0].rule == "requests.cpu"


def test_quota_counts_new_requests_and_memory_in_binary_units() -> None:
    live = [_deployment(replicas=4), _quota({"requests.memory": "2Gi", "limits.cpu": "8"},
                                            {"requests.memory": "1Gi", "limits.cpu": "4"})]
    plan = _plan(UpdateResources(WEB, "app", {"memory": "768Mi"}, {}))
    assert _texts(findings_for(plan, live)) == [
        "resourcequota/compute: requests.memory 1Gi of 2Gi → 3Gi of 2Gi after the plan (HPA-managed workloads at "
        "their maxReplicas); pods beyond the quota will be refused"]


def test_a_rollout_whose_surge_pods_do_not_fit_is_a_finding() -> None:
    live = [_deployment(replicas=2, cpu="250m", limit_cpu=None), _quota({"requests.cpu": "800m"},
                                                                        {"requests.cpu": "500m"})]
    plan = _plan(UpdateResources(WEB, "app", {"cpu": "350m"}, {}))
    assert _texts(findings_for(plan, live)) == [
        "resourcequota/compute: requests.cpu 0.5 of 0.8 → 0.95 of 0.8 during the rollout (old and new pods side by "
        "side, maxSurge deployment/web 1); the surge pods will be refused and the rollout will stall"]
    recreate = {**live[0], "spec": {**live[0]["spec"], "strategy": {"type": "Recreate"}}}
    assert findings_for(plan, [recreate, live[1]]) == []


def test_a_plan_within_the_quota_or_lowering_use_has_no_finding() -> None:
    live = [_deployment(replicas=3), _quota({"requests.cpu": "2"}, {"requests.cpu": "3"})]
    assert findings_for(_plan(ScaleWorkload(WEB, 4)), [_deployment(replicas=3),
                                                       _quota({"requests.cpu": "8"}, {"requests.cpu": "1500m"})]) == []
    assert findings_for(_plan(ScaleWorkload(WEB, 2)), live) == []  # over already, but the plan lowers it


def test_hpa_managed_workloads_count_at_max_replicas() -> None:
    live = [_deployment(replicas=2), _hpa(2, 5), _quota({"pods": "10"}, {"pods": "6"})]
    plan = _plan(ApplyHpa("web", WEB, None, HpaBounds(2, 12, None)))
    assert _texts(findings_for(plan, live)) == [
        "resourcequota/compute: pods 6 of 10 → 16 of 10 after the plan (HPA-managed workloads at their "
        "maxReplicas); pods beyond the quota will be refused"]


def test_quota_without_status_counts_the_workloads() -> None:
    live = [_deployment(replicas=2, cpu="1"), _deployment("api", replicas=1, cpu="1"), _quota({"cpu": "4"})]
    assert _texts(findings_for(_plan(ScaleWorkload(WEB, 4)), live))[0].startswith(
        "resourcequota/compute: cpu 3 of 4 → 5 of 4 after the plan")


def test_limit_range_max_min_and_ratio() -> None:
    limits = {"kind": "LimitRange", "metadata": {"name": "bounds"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "128Mi"}, "maxLimitRequestRatio": {"cpu": "4"}}]}}
    plan = _plan(UpdateResources(WEB, "app", {"cpu": "250m", "memory": "64Mi"}, {"cpu": "3"}))
    assert _texts(findings_for(plan, [_deployment(), limits])) == [
        "limitrange/bounds: deployment/web container app requests.memory 64Mi is below the minimum 128Mi per "
        "Container; its pods will be refused",
        "limitrange/bounds: deployment/web container app limits.cpu 3 is above the maximum 2 per Container; its pods "
        "will be refused",
        "limitrange/bounds: deployment/web container app cpu limit 3 is 12 times its request 250m, above the "
        "maxLimitRequestRatio 4; its pods will be refused"]
    assert findings_for(_plan(ScaleWorkload(WEB, 1)), [_deployment(), limits]) == []  # no new pods


def test_limit_range_defaults_fill_what_the_container_leaves_out() -> None:
    limits = {"kind": "LimitRange", "metadata": {"name": "bounds"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "4"}, "max": {"cpu": "2"}}]}}
    found = findings_for(_plan(ScaleWorkload(WEB, 5)), [_deployment(limit_cpu=None), limits])
    assert _texts(found) == ["limitrange/bounds: deployment/web container app limits.cpu 4 is above the maximum 2 "
                             "per Container; its pods will be refused"]


def _pdb(**spec: Any) -> dict[str, Any]:
    return {"kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def test_pdb_below_min_available_and_zero_disruptions() -> None:
    assert _texts(findings_for(_plan(ScaleWorkload(WEB, 1)), [_deployment(), _pdb(minAvailable=2)])) == [
        "poddisruptionbudget/web: deployment/web goes to 1 pod (from 3), below its minAvailable 2; no pod may be "
        "evicted and node drains will block"]
    assert _texts(findings_for(_plan(ScaleWorkload(WEB, 2)), [_deployment(), _pdb(minAvailable=2)])) == [
        "poddisruptionbudget/web: deployment/web goes to 2 pods (from 3), which under its minAvailable 2 leaves 0 "
        "allowed disruptions; node drains will block"]
    assert _texts(findings_for(_plan(ScaleWorkload(WEB, 1)), [_deployment(), _pdb(maxUnavailable="0%")])) == [
        "poddisruptionbudget/web: deployment/web goes to 1 pod (from 3), which under its maxUnavailable 0% leaves 0 "
        "allowed disruptions; node drains will block"]
    assert findings_for(_plan(ScaleWorkload(WEB, 4)), [_deployment(), _pdb(minAvailable=2)]) == []
    other = {**_pdb(minAvailable=5), "spec": {"selector": {"matchLabels": {"app": "api"}}, "minAvailable": 5}}
    assert findings_for(_plan(ScaleWorkload(WEB, 1)), [_deployment(), other]) == []


def test_pdb_percent_and_match_expressions() -> None:
    pdb = {"kind": "PodDisruptionBudget", "metadata": {"name": "web"}, "spec": {
        "minAvailable": "80%", "selector": {"matchExpressions": [{"key": "app", "operator": "In",
                                                                  "values": ["web"]}]}}}
    assert len(findings_for(_plan(ScaleWorkload(WEB, 2)), [_deployment(), pdb])) == 1  # ceil(1.6) = 2 of 2


def test_hpa_bounds_and_min_replicas_above_pod_room() -> None:
    live = [_deployment(replicas=3), _hpa(2, 5)]
    assert _texts(findings_for(_plan(ScaleWorkload(WEB, 8)), live)) == [
        "hpa/web: the plan sets deployment/web to 8 replicas, outside the HPA's bounds 2-5; the HPA will move it to 5"]
    quota = _quota({"pods": "8"}, {"pods": "7"})
    plan = _plan(ApplyHpa("web", WEB, None, HpaBounds(6, 6, None)))
    found = _texts(findings_for(plan, [_deployment(replicas=3), _hpa(2, 5), quota]))
    assert "hpa/web: minReplicas 6 for deployment/web is above the 4 pods resourcequota/compute leaves it (pods " \
           "hard 8, 4 used by other pods)" in found


def test_policy_mode_and_refusal() -> None:
    assert policy_mode(None) is PolicyMode.WARN and policy_mode("") is PolicyMode.WARN
    assert policy_mode("block") is PolicyMode.BLOCK
    with pytest.raises(InputError, match="INFRA_POLICY: policy: 'stop' is not one of warn, block"):
        policy_mode("stop")
    one = Finding("resourcequota/compute", "pods", "resourcequota/compute: pods 1 of 1 → 2 of 1")
    assert refusal([one], PolicyMode.WARN) is None
    assert refusal([], PolicyMode.BLOCK) is None
    assert refusal([one, one], PolicyMode.BLOCK) == "policy: resourcequota/compute: pods 1 of 1 → 2 of 1 (and 1 more)"


def test_policy_objects_that_could_not_be_read_are_a_finding() -> None:
    live = [_deployment(), unread_item(["resourcequotas", "poddisruptionbudgets"])]
    found = findings_for(_plan(ScaleWorkload(WEB, 4)), live)
    assert _texts(found) == [
        "the policy checks could not list resourcequotas, poddisruptionbudgets in namespace shop (Forbidden): apply "
        "deployments/rbac.yaml there again; the checks of what could be read ran"]
    assert refusal(found, PolicyMode.BLOCK) is not None, "with block, unchecked is not allowed"


def test_the_flow_parameter_wins_over_the_environment() -> None:
    assert chosen_mode("block", {"INFRA_POLICY": "warn"}) is PolicyMode.BLOCK
    assert chosen_mode(None, {"INFRA_POLICY": "block"}) is PolicyMode.BLOCK
    assert chosen_mode(None, {}) is PolicyMode.WARN
    with pytest.raises(InputError, match="parameters: policy: 'off' is not one of warn, block"):
        chosen_mode("off", {"INFRA_POLICY": "warn"})


def test_names_no_api_server_accepts_never_reach_a_finding() -> None:
    forged = "web\nsucceeded"
    live = [_deployment(replicas=3),
            {**_quota({"requests.cpu\nsucceeded": "1"}, {"requests.cpu\nsucceeded": "1"})},
            {**_quota({"pods": "1"}, {"pods": "3"}), "metadata": {"name": forged}},
            {**_pdb(minAvailable=3), "metadata": {"name": forged}},
            {"kind": "LimitRange", "metadata": {"name": "bounds"}, "spec": {"limits": [
                {"type": "Container", "max": {"cpu\nsucceeded": "1"}}]}}]
    assert findings_for(_plan(ScaleWorkload(WEB, 5)), live) == []
