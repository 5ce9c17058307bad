"""Drift verdicts and undo commands, straight from an apply record and live objects."""

from dataclasses import replace
from pathlib import Path
from typing import Any

from core.apply import Binding, prepare_apply
from core.executor import on_delete_unready
from core.plan import load_plan
from core.reversal import reversals
from core.vocabulary import Verdict
from tests.unit.fakes import PLAN, deployment

BINDING = Binding("d", 7, None, "run-1", {})


def judged(tmp_path: Path, web: int, api: int, force: bool = False) -> dict[str, tuple[Verdict, tuple[str, ...]]]:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    plan = load_plan(path)
    record = prepare_apply(plan, [deployment("web", 2), deployment("api", 1)], None, BINDING).record
    record = replace(record, steps=tuple(replace(step, status="succeeded") for step in record.steps))
    live = [deployment("web", web), deployment("api", api)]
    return {r.step.obj or "": (r.verdict, r.step.args) for r in reversals(plan, record, live, force=force)}


def test_verdicts_compare_the_live_object_with_before_and_after(tmp_path: Path) -> None:
    verdicts = judged(tmp_path, web=4, api=1)

    assert verdicts["deployment/web"] == (Verdict.REVERSE,
                                          ("scale", "deployment/web", "--replicas=2", "--current-replicas=4"))
    assert verdicts["deployment/api"][0] == Verdict.UNCHANGED
    assert verdicts["hpa/web"] == (Verdict.UNCHANGED, ("delete", "hpa", "web"))
    assert judged(tmp_path, web=5, api=1)["deployment/web"][0] == Verdict.DRIFTED


def test_a_forced_undo_of_a_drifted_scale_is_preconditioned_on_the_live_count(tmp_path: Path) -> None:
    """Before this, --force sent --current-replicas=<applied> and so always failed on a drifted scale."""
    unforced = judged(tmp_path, web=5, api=1)["deployment/web"]
    forced = judged(tmp_path, web=5, api=1, force=True)["deployment/web"]

    assert unforced[1][-1] == "--current-replicas=4"
    assert forced == (Verdict.DRIFTED, ("scale", "deployment/web", "--replicas=2", "--current-replicas=5"))


HPA_ONLY = """\
namespace: shop
target: prod
actions:
  - {type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8}
"""


def hpa(name: str) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name}, "minReplicas": 3, "maxReplicas": 8}}


def created_hpa_undo(tmp_path: Path, live_replicas: int,
                     legacy: bool = False) -> list[tuple[Verdict, tuple[str, ...]]]:
    path = tmp_path / "plan.yaml"
    path.write_text(HPA_ONLY)
    plan = load_plan(path)
    record = prepare_apply(plan, [deployment("web", 2)], None, BINDING).record
    steps = tuple(replace(step, status="succeeded", before=None if legacy else step.before) for step in record.steps)
    live = [deployment("web", live_replicas), hpa("web")]
    return [(r.verdict, r.step.args) for r in reversals(plan, replace(record, steps=steps), live)]


def test_replicas_raised_by_a_created_hpa_go_back_to_the_captured_count(tmp_path: Path) -> None:
    assert created_hpa_undo(tmp_path, live_replicas=3) == [
        (Verdict.REVERSE, ("delete", "hpa", "web")),
        (Verdict.REVERSE, ("scale", "deployment/web", "--replicas=2", "--current-replicas=3"))]


def test_replicas_outside_the_hpa_bounds_are_someone_elses_change(tmp_path: Path) -> None:
    assert created_hpa_undo(tmp_path, live_replicas=9)[1][0] == Verdict.DRIFTED
    assert created_hpa_undo(tmp_path, live_replicas=2)[1][0] == Verdict.UNCHANGED


def test_a_record_without_the_target_replicas_only_deletes_the_hpa(tmp_path: Path) -> None:
    assert created_hpa_undo(tmp_path, live_replicas=3, legacy=True) == [(Verdict.REVERSE, ("delete", "hpa", "web"))]


def statefulset(generation: int, observed: int, replicas: int, ready: int, pods: int | None = None) -> dict[str, Any]:
    return {"kind": "StatefulSet", "metadata": {"name": "db", "generation": generation},
            "spec": {"replicas": replicas, "updateStrategy": {"type": "OnDelete"}},
            "status": {"observedGeneration": observed, "replicas": replicas if pods is None else pods,
                       "readyReplicas": ready, "currentRevision": "db-1", "updateRevision": "db-2"}}


def test_an_on_delete_statefulset_is_verified_from_generation_and_ready_replicas() -> None:
    assert on_delete_unready(statefulset(2, 2, 3, 3)) is None, "revisions differ by design under OnDelete"
    assert on_delete_unready(statefulset(2, 1, 3, 3)) == "observedGeneration 1 is behind generation 2"
    assert on_delete_unready(statefulset(2, 2, 3, 1)) == "1 of 3 replicas ready"
    assert on_delete_unready(statefulset(2, 2, 2, 2, pods=3)) == "3 pods for 2 replicas", "a scale-down not done"
