"""Drift verdicts and undo commands, straight from an apply record and live objects."""

from dataclasses import replace
from pathlib import Path

from core.apply import prepare_apply
from core.plan import load_plan
from core.reversal import reversals
from core.vocabulary import Verdict
from tests.unit.fakes import PLAN, deployment


def judged(tmp_path: Path, web: int, api: int, force: bool = False) -> dict[str, tuple[Verdict, tuple[str, ...]]]:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    plan = load_plan(path)
    record = prepare_apply(plan, [deployment("web", 2), deployment("api", 1)], None, "d", 7, None).record
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
