"""Rollback never guesses: apply stamps what it changes, and a rollback without a record for stamped objects refuses
unless given a record file or told to use the seed's fallback."""

from pathlib import Path
from typing import Any

import pytest

from cli.args import parse
from core.errors import InputError
from core.record import RECORD_ANNOTATION, record_name
from core.report import RunReport
from core.state import comparable, state_of
from core.vocabulary import Outcome
from tests.unit.fakes import World
from tests.unit.test_lifecycle import apply, record_of, rollback


def annotation(item: dict[str, Any] | None) -> str | None:
    assert item is not None
    return item["metadata"].get("annotations", {}).get(RECORD_ANNOTATION)


def forget_record(world: World) -> Path:
    """Lose the stored record (ConfigMap and mirror alike), keeping a saved copy of it."""
    saved = world.plan_path.with_name("saved.record.json")
    saved.write_text(record_of(world).to_json())
    world.records.stored.clear()
    return saved


def test_apply_stamps_existing_objects_before_the_first_change_and_created_hpas_right_after(world: World) -> None:
    assert apply(world).final == Outcome.SUCCEEDED

    assert world.cluster.stamps == [(0, ["deployment/web", "deployment/api"]), (3, ["hpa/web"])]
    name = record_name(world.load(str(world.plan_path)))
    for kind, object_name in [("Deployment", "web"), ("Deployment", "api"), ("HorizontalPodAutoscaler", "web")]:
        assert annotation(world.cluster.find(kind, object_name)) == name


def test_the_stamp_is_not_drift(world: World) -> None:
    """The stamp is object metadata: not in what drift compares, and not in the pod template (no rollout)."""
    plan = world.load(str(world.plan_path))
    before = {action: comparable(action, state_of(action, world.cluster.capture(plan))) for action in plan.actions}
    world.cluster.stamp(plan, ["deployment/web", "deployment/api"], record_name(plan))

    after = {action: comparable(action, state_of(action, world.cluster.capture(plan))) for action in plan.actions}

    assert after == before
    web = world.cluster.find("Deployment", "web")
    assert web is not None and "annotations" not in web["spec"]["template"].get("metadata", {})


def test_a_stamped_plan_without_record_is_refused_and_nothing_runs(world: World) -> None:
    apply(world)
    forget_record(world)
    ran = len(world.cluster.ran)

    report = rollback(world)

    assert report.final == Outcome.SKIPPED, report.render()
    refusal = report.lines[-1]
    assert refusal.startswith("Refusing to execute: no apply record for this plan, but deployment/web, "
                              "deployment/api, hpa/web carry infra-orchestrator.io/record=")
    assert "--from-record FILE" in refusal and "--seed-fallback" in refusal
    assert len(world.cluster.ran) == ran and world.replicas("web") == 4


def test_from_record_restores_exactly(world: World) -> None:
    apply(world)
    saved = forget_record(world)

    report = rollback(world, from_record=str(saved))

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert f"note: record read from {saved} (--from-record)" in report.lines
    assert world.replicas("web") == 2 and world.replicas("api") == 1
    assert world.cluster.find("HorizontalPodAutoscaler", "web") is None
    assert record_of(world).status == "rolled-back", "the record is stored again"


def test_a_record_file_of_another_plan_version_is_refused(world: World) -> None:
    apply(world)
    saved = forget_record(world)
    world.plan_path.write_text(world.plan_path.read_text() + "# edited\n")
    ran = len(world.cluster.ran)

    report = rollback(world, from_record=str(saved))

    assert report.final == Outcome.SKIPPED
    assert f"{saved}: digest: the record is of another version of the plan" in report.lines[-1]
    assert len(world.cluster.ran) == ran


def test_seed_fallback_runs_the_seed_steps(world: World) -> None:
    apply(world)
    forget_record(world)
    world.cluster.ran.clear()

    report = rollback(world, seed_fallback=True)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert world.cluster.ran == [("rollout", "undo", "deployment/web"), ("rollout", "undo", "deployment/api"),
                                 ("delete", "hpa", "web")]
    assert any(line.startswith("note: --seed-fallback:") for line in report.lines)


def test_an_unstamped_plan_without_record_still_gets_the_seed_rollback(world: World) -> None:
    world.cluster.find("Deployment", "web")["spec"]["replicas"] = 4  # type: ignore[index]  # the old scripts

    report: RunReport = rollback(world)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert world.cluster.ran == [("rollout", "undo", "deployment/web")]
    assert any(line.startswith("note: no execution record for this plan: using the seed's rollback")
               for line in report.lines)


def test_from_record_is_checked_by_the_cli(tmp_path: Path, world: World) -> None:
    apply(world)
    saved = forget_record(world)
    plan = str(world.plan_path)

    assert parse("rollback", [f"--plan={plan}", f"--from-record={saved}", "--seed-fallback"]).from_record == saved
    with pytest.raises(InputError, match=r"^arguments: --from-record: .* is not an existing file$"):
        parse("rollback", [f"--plan={plan}", f"--from-record={tmp_path / 'missing.json'}"])
    garbled = tmp_path / "garbled.json"
    garbled.write_text(saved.read_text()[:40])
    with pytest.raises(InputError, match=rf"^{garbled}: record: not a readable apply record"):
        parse("rollback", [f"--plan={plan}", f"--from-record={garbled}"])
    with pytest.raises(InputError, match="unknown flag"):
        parse("apply", [f"--plan={plan}", "--seed-fallback"])
