"""The full lifecycle in one test: infra-scale generates a plan and its PR; infra-apply previews and executes it
through the label gate; infra-rollback restores exactly what was there before. Sandbox cluster, real kubectl,
GitHub test server, the session's Prefect server."""

from pathlib import Path

import pytest

from core.plan import load_plan
from core.report import RunReport
from tests.fixtures.github import GitHubServer
from tests.fixtures.kube import KubeSandbox
from tests.scale.conftest import NAMESPACE, REPO, write_desired

pytestmark = pytest.mark.usefixtures("prefect")

PLAN = "ops/plans/infra-scale/staging/plan.yaml"
DESIRED = f"""target: staging
namespace: {NAMESPACE}
workloads:
  - name: web
    replicas: 3
    containers:
      app:
        requests: {{cpu: 500m}}
  - name: api
    replicas: 4   # api is HPA-managed: this becomes hpa/api's minReplicas
"""


def report(value: object) -> RunReport:
    assert isinstance(value, RunReport), value
    return value


def snapshot(cluster: KubeSandbox) -> dict[str, object]:
    web = cluster.get("deployment", NAMESPACE, "web")
    hpa = cluster.get("horizontalpodautoscaler", NAMESPACE, "api")
    assert web is not None and hpa is not None
    return {
        "web.replicas": web["spec"]["replicas"],
        "web.resources": web["spec"]["template"]["spec"]["containers"][0].get("resources"),
        "api.hpa": (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]),
    }


def test_generated_plan_previews_applies_and_rolls_back(
    cluster: KubeSandbox, github: GitHubServer, tmp_path: Path
) -> None:
    from flows.apply import infra_apply
    from flows.rollback import infra_rollback
    from flows.scale import infra_scale

    before = snapshot(cluster)
    scaled = report(infra_scale(desired=write_desired(tmp_path / "staging.yaml", DESIRED), execute=True))
    assert scaled.final == "succeeded" and scaled.document is not None
    number = scaled.document["pullRequest"]["number"]
    plan = load_plan(Path(PLAN))
    assert [a.type for a in plan.actions] == ["scale_workload", "update_resources", "apply_hpa"]

    preview = report(infra_apply(plan=PLAN))
    assert preview.final == "succeeded"
    assert preview.document is not None
    assert [r["command"] for r in preview.document["results"]][:2] == [
        "kubectl -n assistant-staging scale deployment/web --replicas=3",
        "kubectl -n assistant-staging set resources deployment/web -c=app --requests=cpu=500m",
    ]
    assert snapshot(cluster) == before

    github.add_label(REPO, number, "execute-plan", "alice")
    applied = report(infra_apply(plan=PLAN, pr=number, execute=True))
    assert applied.final == "succeeded", applied.render()
    after = snapshot(cluster)
    assert after["web.replicas"] == 3 and after["api.hpa"] == (4, 6)
    assert after["web.resources"]["requests"]["cpu"] == "500m"  # type: ignore[index]

    # applied, the cluster matches the desired state: the nightly run has nothing to do and leaves the PR alone
    nightly = report(infra_scale(desired=str(tmp_path / "staging.yaml"), execute=True))
    assert nightly.final == "succeeded" and any(line.startswith("note: nothing to do") for line in nightly.lines)
    assert load_plan(Path(PLAN)).actions == plan.actions

    github.add_label(REPO, number, "rollback-plan", "alice")
    rolled = report(infra_rollback(plan=PLAN, pr=number, execute=True))
    assert rolled.final == "succeeded", rolled.render()
    assert snapshot(cluster) == before

    # rolled back, the cluster differs again: the next run proposes the same plan on the same PR
    again = report(infra_scale(desired=str(tmp_path / "staging.yaml"), execute=True))
    assert again.document is not None and again.document["pullRequest"]["number"] == number
    assert again.document["pullRequest"]["blocked"] is None and len(again.document["results"]) == 3
