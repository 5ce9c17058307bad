"""Apply's scale steps carry the replicas the run read as `--current-replicas` (core.apply.preconditioned)."""

from pathlib import Path

from core.apply import Binding, preconditioned, prepare_apply
from core.plan import load_plan
from tests.unit.fakes import NAMESPACE, deployment


def plan_of(tmp_path: Path, *actions: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(f"namespace: {NAMESPACE}\nactions:\n" + "".join(f"  - {action}\n" for action in actions))
    return path


def scale_args(tmp_path: Path, *actions: str, live: list[int] | None = None) -> list[tuple[str, ...]]:
    plan = load_plan(plan_of(tmp_path, *actions))
    objects = [deployment(name, replicas) for name, replicas in zip(("web", "api"), live or [2, 1], strict=False)]
    return [step.args for step in preconditioned(plan, objects) if step.args[0] == "scale"]


def test_a_scale_is_preconditioned_on_the_replicas_read(tmp_path: Path) -> None:
    assert scale_args(tmp_path, "{type: scale_workload, name: web, replicas: 4}",
                      "{type: scale_workload, name: api, replicas: 3}") == [
        ("scale", "deployment/web", "--replicas=4", "--current-replicas=2"),
        ("scale", "deployment/api", "--replicas=3", "--current-replicas=1")]


def test_a_second_scale_of_a_workload_is_preconditioned_on_the_first_ones_count(tmp_path: Path) -> None:
    assert scale_args(tmp_path, "{type: scale_workload, name: web, replicas: 4}",
                      "{type: scale_workload, name: web, replicas: 6}") == [
        ("scale", "deployment/web", "--replicas=4", "--current-replicas=2"),
        ("scale", "deployment/web", "--replicas=6", "--current-replicas=4")]


def test_a_scale_after_the_plans_own_hpa_step_for_its_workload_carries_none(tmp_path: Path) -> None:
    """That HPA may move the count within its new bounds before the scale lands."""
    assert scale_args(tmp_path, "{type: scale_workload, name: api, replicas: 3}",
                      "{type: apply_hpa, name: web, minReplicas: 3, maxReplicas: 8}",
                      "{type: scale_workload, name: web, replicas: 4}") == [
        ("scale", "deployment/api", "--replicas=3", "--current-replicas=1"),
        ("scale", "deployment/web", "--replicas=4")]


def test_a_scale_of_a_missing_workload_carries_none(tmp_path: Path) -> None:
    assert scale_args(tmp_path, "{type: scale_workload, name: api, replicas: 3}", live=[2]) == [
        ("scale", "deployment/api", "--replicas=3")]


def test_the_record_and_the_steps_to_run_carry_the_precondition(tmp_path: Path) -> None:
    plan = load_plan(plan_of(tmp_path, "{type: scale_workload, name: web, replicas: 4}"))
    prepared = prepare_apply(plan, [deployment("web", 5)], None, Binding("d", 7, None, "run-1", {}))

    assert prepared.to_run[0].args[-1] == "--current-replicas=5"
    assert prepared.record.steps[0].command == \
        f"kubectl -n {NAMESPACE} scale deployment/web --replicas=4 --current-replicas=5"
