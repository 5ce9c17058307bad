"""The `infra-scale` flow on Prefect (shared session harness) against the sandbox cluster and GitHub test server."""

import io
import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.plan import load_plan
from core.report import RunReport
from tests.fixtures.github import GitHubServer
from tests.fixtures.kube import KubeSandbox
from tests.scale.conftest import NAMESPACE, REPO, write_desired

pytestmark = pytest.mark.usefixtures("prefect")

DESIRED = f"""target: staging
namespace: {NAMESPACE}
workloads:
  - name: web
    replicas: {{web}}
  - name: api
    hpa: {{{{minReplicas: {{api_min}}, maxReplicas: 6}}}}
"""
PLAN = "ops/plans/infra-scale/staging/plan.yaml"


def desired(tmp_path: Path, web: int = 2, api_min: int = 2) -> str:
    return write_desired(tmp_path / "staging.yaml", DESIRED.format(web=web, api_min=api_min))


def open_prs(server: GitHubServer) -> list[int]:
    return sorted(n for n, i in server.repos[REPO].issues.items() if i.is_pull and i.state == "open")


def test_nothing_to_do_no_plan_no_pr(cluster: KubeSandbox, github: GitHubServer, tmp_path: Path) -> None:
    from flows.scale import infra_scale

    report = infra_scale(desired=desired(tmp_path), execute=True)
    assert isinstance(report, RunReport) and report.final == "succeeded"
    assert any(line.startswith("note: nothing to do") for line in report.lines)
    assert not Path(PLAN).exists() and open_prs(github) == []
    assert github.count("POST") == 0 and github.count("PUT") == 0


def test_one_difference_opens_a_pr_and_a_rerun_updates_it(
    cluster: KubeSandbox, github: GitHubServer, tmp_path: Path
) -> None:
    from flows.scale import infra_scale

    first = infra_scale(desired=desired(tmp_path, web=3), execute=True)
    assert first.final == "succeeded" and first.document is not None
    assert [r["action"] for r in first.document["results"]] == ["scale_workload"]
    pr = first.document["pullRequest"]
    assert pr["created"] is True and pr["branch"].startswith("infra-scale/staging/")
    assert open_prs(github) == [pr["number"]]
    assert github.file_at(REPO, pr["branch"], PLAN) == Path(PLAN).read_bytes()
    assert "| `deployment/web` | replicas | 2 → **3** | previewed |" in (
        github.snapshot(REPO, pr["number"]).body or ""
    )
    assert github.labels_of(REPO, pr["number"]) == ["infra-plan"]

    # the same night, the desired state changes again (and now touches the HPA-managed api)
    second = infra_scale(desired=desired(tmp_path, web=4, api_min=3), execute=True)
    assert second.document is not None
    again = second.document["pullRequest"]
    assert again["number"] == pr["number"] and again["created"] is False
    assert open_prs(github) == [pr["number"]]
    plan = load_plan(Path(PLAN))
    assert [a.type for a in plan.actions] == ["scale_workload", "apply_hpa"]
    assert github.file_at(REPO, pr["branch"], PLAN) == Path(PLAN).read_bytes()
    assert github.file_at(REPO, pr["branch"], "ops/plans/infra-scale/staging/previous-hpa-api.yaml") is not None

    # a rerun (or a retried run) with nothing new renders the same bytes and commits nothing
    writes = github.count("PUT") + github.count("POST")
    third = infra_scale(desired=desired(tmp_path, web=4, api_min=3), execute=True)
    assert third.document is not None and third.document["pullRequest"]["committed"] == ()
    assert github.count("PUT") + github.count("POST") == writes


def test_dry_run_flow_writes_the_plan_but_not_github(
    cluster: KubeSandbox, github: GitHubServer, tmp_path: Path
) -> None:
    from flows.scale import infra_scale

    report = infra_scale(target="staging", namespace=NAMESPACE, workloads=["Deployment:api:5"])
    assert report.final == "succeeded" and Path(PLAN).exists()
    assert "apply -f -" in report.lines[0]
    assert github.count() == 0


def test_bad_desired_file_fails_the_run(cluster: KubeSandbox, tmp_path: Path) -> None:
    from flows.scale import infra_scale

    text = "target: staging\nnamespace: x\nworkloads: [{name: web, replicas: -1}]\n"
    path = write_desired(tmp_path / "bad.yaml", text)
    with pytest.raises(InputError, match=r"workloads\[0\].replicas: -1 is out of range"):
        infra_scale(desired=path)
    assert not Path("ops").exists()


def test_cli_execute_goes_through_the_flow(cluster: KubeSandbox, github: GitHubServer, tmp_path: Path) -> None:
    from cli.scale import run

    out, err = io.StringIO(), io.StringIO()
    code = run(["--execute", "--target=staging", f"--namespace={NAMESPACE}", "--workload=Deployment:web:5"], out, err)
    assert (code, err.getvalue()) == (0, "")
    lines = out.getvalue().splitlines()
    assert lines[0] == "preview: kubectl -n assistant-staging scale deployment/web --replicas=5"
    assert any(line.startswith("note: opened pull request #") for line in lines)
    assert lines[-1] == "succeeded"
    document = json.loads(out.getvalue()[out.getvalue().index("{") : out.getvalue().rindex("}") + 1])
    assert document["executed"] is True and document["pullRequest"]["number"] in open_prs(github)
