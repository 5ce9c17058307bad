"""Change-centric rendering (rows per object and field, the markdown table, the sticky comment with its earlier
runs) and the Plan lifecycle over a fake read-only cluster: pure and fast."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.plan import PrintedPlan
from core.changes import FieldChange
from core.conventions import Flow
from core.lifecycle.plan import PlanReview
from core.plan import load_plan
from core.report import (
    GITHUB_COMMENT_LIMIT,
    MAX_EARLIER_RUNS,
    StepResult,
    finished,
    markdown,
    plan_markdown,
    sticky_body,
    table_rows,
)
from core.state import state_of
from core.steps import Step, apply_steps
from core.vocabulary import StepStatus
from tests.unit.fakes import NAMESPACE, deployment

MARKER = "<!-- infra-orchestrator:apply:ops/plan.yaml -->"
PLAN = f"""\
namespace: {NAMESPACE}
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
  - {{type: update_resources, name: api, container: app, requests: {{cpu: 250m}}}}
  - {{type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 70}}
"""


def with_resources(name: str, replicas: int, cpu: str) -> dict[str, Any]:
    obj = deployment(name, replicas)
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
    return obj


def hpa(name: str, target: str, low: int, high: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": low, "maxReplicas": high}}


def plan_at(tmp_path: Path, text: str = PLAN) -> Any:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return load_plan(path)


def executed(tmp_path: Path) -> list[StepResult]:
    """The apply steps as a run leaves them: each with the states recorded before and after."""
    plan = plan_at(tmp_path)
    before = [with_resources("web", 2, "100m"), with_resources("api", 1, "100m")]
    after = [with_resources("web", 4, "100m"), with_resources("api", 1, "250m"), hpa("web", "web", 3, 8)]
    return [StepResult(step, StepStatus.SUCCEEDED, attempts=1 + (step.number == 2), duration_s=0.035,
                       before=state_of(action, before), after=state_of(action, after))
            for step, action in zip(apply_steps(plan), plan.actions, strict=True)]


def test_an_executed_run_has_a_row_per_object_and_field_before_to_after(tmp_path: Path) -> None:
    rows = [(row["object"], row["field"], row["before"], row["after"]) for row in table_rows(executed(tmp_path),
                                                                                              NAMESPACE)]
    assert rows == [
        ("deployment/web", "replicas", "2", "4"),
        ("deployment/api", "app requests.cpu", "100m", "250m"),
        ("hpa/web", "target", "—", "Deployment/web"),
        ("hpa/web", "minReplicas", "—", "3"),
        ("hpa/web", "maxReplicas", "—", "8"),
    ]


def test_the_cli_keeps_the_seed_lines_and_adds_change_lines(tmp_path: Path) -> None:
    results = executed(tmp_path)
    report = finished(results, NAMESPACE, True, ["note: something"])
    text = report.render().splitlines()
    assert text[0] == "note: something" and text[-1] == "succeeded"
    assert "change: deployment/web replicas: 2 → 4 (succeeded, 1 attempt, 35 ms)" in text
    assert "change: deployment/api app requests.cpu: 100m → 250m (succeeded, 2 attempts, 35 ms)" in text
    assert report.document is not None
    assert report.document["results"][0]["changes"] == [
        {"object": "deployment/web", "field": "replicas", "before": "2", "after": "4"}]
    assert report.document["results"][0]["note"] == "scaled deployment/web to 4", "the seed's fields stay"


def test_a_preview_shows_what_it_sets_and_that_it_read_nothing(tmp_path: Path) -> None:
    plan = plan_at(tmp_path)
    previewed = [StepResult(step, StepStatus.PREVIEWED) for step in apply_steps(plan)]
    lines = finished(previewed, NAMESPACE, False).changes
    assert "change: deployment/web replicas: ? → 4 (previewed)" in lines
    assert "change: hpa/web cpu utilization %: ? → 70 (previewed)" in lines


def test_the_markdown_is_change_centric_with_the_commands_collapsed(tmp_path: Path) -> None:
    text = markdown("infra-apply: ops/plan.yaml", executed(tmp_path), NAMESPACE, True,
                    links=[("PR #7", "https://github.com/acme/infra/pull/7")])
    assert "[PR #7](https://github.com/acme/infra/pull/7)" in text
    assert "| object | field | before → after | status | attempts | duration |" in text
    assert "| `deployment/web` | replicas | 2 → **4** | succeeded | 1 | 35 ms |" in text
    table, _, commands = text.partition("<details><summary>kubectl commands</summary>")
    assert "kubectl -n" not in table, "commands only in the collapsed section"
    assert "| 1 | `kubectl -n shop scale deployment/web --replicas=4` |" in commands


def test_a_step_without_changes_is_one_row_naming_what_it_did() -> None:
    check = Step(4, "verify", None, "deployment/web", ("rollout", "status", "deployment/web"), "deployment/web "
                 "rolled out")  # type: ignore[arg-type]
    [row] = table_rows([StepResult(check, StepStatus.FAILED, attempts=1, error="timed out")], NAMESPACE)
    assert (row["object"], row["field"], row["before"], row["status"], row["error"]) == \
        ("deployment/web", "deployment/web rolled out", "", "failed", "timed out")


def test_a_rerun_keeps_the_earlier_runs_collapsed_under_the_newest() -> None:
    first = sticky_body(MARKER, "### run 1\nrows of run 1", None)
    assert first == f"{MARKER}\n### run 1\nrows of run 1"
    second = sticky_body(MARKER, "### run 2\nrows of run 2", first)
    third = sticky_body(MARKER, "### run 3\nrows of run 3", second)
    assert third.splitlines()[:2] == [MARKER, "### run 3"]
    newest, _, earlier = third.partition("**Earlier runs**")
    assert "run 1" not in newest and "run 2" not in newest
    assert earlier.index("<details><summary>run 2</summary>") < earlier.index("<details><summary>run 1</summary>")
    assert third.count(MARKER) == 1
    assert sticky_body(MARKER, "### run 3\nrows of run 3", third) == third, "a retried write adds nothing"


def test_earlier_runs_are_capped_in_number_and_to_githubs_size_limit() -> None:
    body = None
    for number in range(MAX_EARLIER_RUNS + 5):
        body = sticky_body(MARKER, f"### run {number}\n" + "x" * 9000, body)
    assert body is not None and len(body) <= GITHUB_COMMENT_LIMIT
    assert body.splitlines()[1] == f"### run {MAX_EARLIER_RUNS + 4}"
    kept = body.count("<details><summary>run ")
    assert 0 < kept <= MAX_EARLIER_RUNS
    assert f"<details><summary>run {MAX_EARLIER_RUNS + 3}</summary>" in body, "the newest earlier run is kept"


@dataclass
class ReadOnlyCluster:
    objects: list[dict[str, Any]]
    rejected: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def capture(self, plan: Any) -> list[dict[str, Any]]:
        self.calls.append("get")
        return self.objects

    def dry_run(self, plan: Any, steps: Sequence[Step]) -> list[StepResult]:
        self.calls += [" ".join(step.args) for step in steps]
        return [StepResult(step, StepStatus.FAILED if step.obj in self.rejected else StepStatus.SUCCEEDED,
                           attempts=1, error="rejected" if step.obj in self.rejected else None) for step in steps]


def review(tmp_path: Path, cluster: ReadOnlyCluster, text: str = PLAN) -> Any:
    plan = plan_at(tmp_path, text)
    return PlanReview(str(plan.path), load=lambda _: plan, cluster=cluster, reporter=PrintedPlan()).run()


def test_plan_shows_live_to_planned_and_only_reads_and_dry_runs(tmp_path: Path) -> None:
    cluster = ReadOnlyCluster([with_resources("web", 2, "100m"), with_resources("api", 1, "0.1")])
    report = review(tmp_path, cluster)
    assert "change: deployment/web replicas: 2 → 4 (dry run passed)" in report.lines
    assert "change: deployment/api app requests.cpu: 0.1 → 250m (dry run passed)" in report.lines
    assert "change: hpa/web minReplicas: — → 3 (dry run passed)" in report.lines
    assert cluster.calls[0] == "get" and all(call.endswith("--dry-run=server") for call in cluster.calls[1:])
    assert report.render().splitlines()[-1] == "succeeded"


def test_plan_warns_of_missing_objects_fighting_hpas_and_drift(tmp_path: Path) -> None:
    cluster = ReadOnlyCluster([deployment("web", 3), hpa("web-hpa", "web", 2, 6)], rejected={"deployment/gone"})
    report = review(tmp_path, cluster, f"""\
namespace: {NAMESPACE}
actions:
  - {{type: scale_workload, name: web, replicas: 4, current: 2}}
  - {{type: scale_workload, name: gone, replicas: 1}}
""")
    warnings = [line for line in report.lines if line.startswith("warning: ")]
    assert warnings == [
        "warning: hpa/web-hpa manages deployment/web (min 2, max 6): it will move replicas away from the planned 4; "
        "change the HPA's bounds instead",
        "warning: drift since the plan was written: deployment/web replicas was 2 when the plan was written, is 3 now",
        "warning: deployment/gone does not exist in namespace shop",
    ]
    assert report.document["warnings"] == [warning.removeprefix("warning: ") for warning in warnings]
    assert report.render().splitlines()[-1] == "failed"


def test_an_unchanged_field_says_so(tmp_path: Path) -> None:
    report = review(tmp_path, ReadOnlyCluster([deployment("web", 4)]),
                    f"namespace: {NAMESPACE}\nactions:\n  - {{type: scale_workload, name: web, replicas: 4}}\n")
    assert "change: deployment/web replicas: 4 → 4 (dry run passed, no change)" in report.lines


def test_the_plan_comment_table(tmp_path: Path) -> None:
    plan = plan_at(tmp_path)
    result = StepResult(apply_steps(plan)[0], StepStatus.FAILED, attempts=1, error="Invalid | value",
                        before={"replicas": 2}, after={"replicas": 4})
    text = plan_markdown("infra-plan: ops/plan.yaml", [result], NAMESPACE, ["hpa/web manages deployment/web"])
    assert "> :warning: hpa/web manages deployment/web" in text
    assert "| `deployment/web` | replicas | 2 → **4** | failed: Invalid \\| value |" in text
    assert "**failed**" in text


def test_field_change_json() -> None:
    assert FieldChange("hpa/web", "maxReplicas", "5", "8").to_json() == \
        {"object": "hpa/web", "field": "maxReplicas", "before": "5", "after": "8"}


def test_the_hpa_warning_is_judged_by_the_bounds_after_the_plan(tmp_path: Path) -> None:
    cluster = ReadOnlyCluster([deployment("web", 2), hpa("web", "web", 2, 6)])
    within = review(tmp_path, cluster, f"""\
namespace: {NAMESPACE}
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
  - {{type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 70}}
""")
    assert not [line for line in within.lines if line.startswith("warning: ")]

    outside = review(tmp_path, cluster, f"""\
namespace: {NAMESPACE}
actions:
  - {{type: scale_workload, name: web, replicas: 9}}
  - {{type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 70}}
""")
    assert [line for line in outside.lines if line.startswith("warning: ")] == [
        "warning: policy: hpa/web: the plan sets deployment/web to 9 replicas, outside the HPA's bounds 3-8; the "
        "HPA will move it to 8"]


def test_plan_and_apply_comments_have_a_summary_line_and_the_next_step(tmp_path: Path) -> None:
    plan = plan_at(tmp_path)
    planned = [StepResult(step, StepStatus.SUCCEEDED, attempts=1, before=None, after=None)
               for step in apply_steps(plan)]
    text = plan_markdown("infra-plan: ops/plan.yaml", planned, NAMESPACE, [])
    fields = sum(len(result.changes) for result in planned)
    assert f"**3 objects, {fields} fields** · next: add `execute-plan` to apply" in text

    applied = markdown("infra-apply: ops/plan.yaml", planned, NAMESPACE, True, flow=Flow.APPLY)
    assert f"**3 objects, {fields} fields** · next: add `rollback-plan` to roll back" in applied
    failed = [StepResult(apply_steps(plan)[0], StepStatus.FAILED, attempts=1, error="no")]
    assert "next: add `rollback-plan` to undo the steps that ran, or fix the cause and add `execute-plan` again" in \
        markdown("infra-apply: ops/plan.yaml", failed, NAMESPACE, True, flow=Flow.APPLY)
