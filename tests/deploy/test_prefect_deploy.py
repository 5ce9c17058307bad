"""prefect.yaml against a real Prefect server on PostgreSQL: accepted by ``prefect --no-prompt deploy --all``,
with the schedules, work pools, parameters and event triggers the flows need."""

from __future__ import annotations

from typing import Any

from deployments.work_pools import ensure
from tests.deploy.conftest import Deployed

TARGETS = ("prod", "staging")
FLOWS = ("infra-scale", "infra-apply", "infra-rollback", "infra-plan")


def test_work_pools_and_limits_are_idempotent(deployed: Deployed) -> None:
    server = deployed.server
    for target in TARGETS:
        pool = server.api("GET", f"/work_pools/infra-{target}")
        assert pool["type"] == "process"
    assert "work pool infra-prod: created" in deployed.pools_output
    # the fixture ran the script once; again (in-process, cheaper than another interpreter) changes nothing; the
    # limits follow what the plans change: a cluster (kubeconfig context) and a namespace, not a target
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        first = ensure(["prod", "staging"], [("prod-eu", "shop")])
        lines = ensure(["prod", "staging"], [("prod-eu", "shop")])
    assert first[-1] == "concurrency limit infra-lock-prod-eu.shop: created"
    assert lines == ["work pool infra-prod: exists", "work pool infra-staging: exists",
                     "concurrency limit infra-lock-prod-eu.shop: exists"]  # fmt: skip
    assert server.api("GET", "/v2/concurrency_limits/infra-lock-prod-eu.shop")["limit"] == 1


def test_deploy_all_creates_every_deployment(deployed: Deployed) -> None:
    server = deployed.server
    for flow in FLOWS:
        for target in TARGETS:
            dep = server.deployment(flow, target)
            assert dep["work_pool_name"] == f"infra-{target}"
            assert dep["description"] and "Parameters:" in dep["description"]
            assert dep["pull_steps"] == [{"deployments.worker.use_checkout":
                                          {"directory": "{{ $INFRA_ORCHESTRATOR_DIR }}"}}]  # fmt: skip
            properties = dep["parameter_openapi_schema"]["properties"]
            if flow == "infra-scale":
                assert {"desired", "target", "execute", "base"} <= set(properties)
                assert dep["parameters"]["target"] == target and dep["parameters"]["execute"] is False
                (schedule,) = dep["schedules"]
                assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["schedule"]["timezone"] == "UTC"
                assert schedule["parameters"] == {"execute": True}
            elif flow == "infra-plan":
                assert {"plan", "pr", "repository", "head_sha", "policy"} <= set(properties)
                assert dep["schedules"] == []
            else:
                assert {"plan", "pr", "execute"} <= set(properties)
                assert dep["parameters"]["execute"] is False
                assert ("atomic" if flow == "infra-apply" else "force") in properties
                assert ("policy" in properties) == (flow == "infra-apply"), "INFRA_POLICY per deployment"
                if flow == "infra-apply":
                    assert dep["parameters"]["require_plan"] is False, "--require-plan as a deployment parameter"
                assert dep["schedules"] == []


def test_deploy_all_creates_label_triggers(deployed: Deployed) -> None:
    server = deployed.server
    automations: list[dict[str, Any]] = server.api("POST", "/automations/filter", {})
    by_name = {a["name"]: a for a in automations}
    for flow, label in (("infra-apply", "execute-plan"), ("infra-rollback", "rollback-plan")):
        for target in TARGETS:
            automation = by_name[f"{flow}-{target}-on-{label}-label"]
            trigger = automation["trigger"]
            assert trigger["expect"] == ["github.pull_request.labeled"]
            assert trigger["match"] == {"prefect.resource.id": "github.pr.*", "github.label": label,
                                        "github.target": target}  # fmt: skip
            (action,) = automation["actions"]
            assert action["type"] == "run-deployment"
            assert action["deployment_id"] == server.deployment(flow, target)["id"]
            assert action["parameters"] == {"pr": "{{ event.payload.number }}", "plan": "{{ event.payload.plan }}",
                                            "repository": "{{ event.payload.repository }}",
                                            "head_sha": "{{ event.payload.head_sha }}", "execute": True}  # fmt: skip
    for target in TARGETS:
        trigger = by_name[f"infra-plan-{target}-on-pr-change"]["trigger"]
        assert trigger["expect"] == ["github.pull_request.plan"]
        assert trigger["match"] == {"prefect.resource.id": "github.pr.*", "github.target": target}
    assert len([a for a in automations if a["name"].startswith("infra-")]) == 6
