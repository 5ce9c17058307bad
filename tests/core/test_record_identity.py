"""A plan's record is found however the plan's path is spelled: a rollback run with `./plan.yaml` or an
absolute path must not read "no record" and fall back to the seed's rollout undo."""

from pathlib import Path

import pytest

from core.plan import load_plan
from core.record import record_name

PLAN = "namespace: shop\nactions: [{type: scale_workload, name: web, replicas: 2}]\n"


def test_one_record_name_for_every_spelling_of_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ops" / "prod").mkdir(parents=True)
    (tmp_path / "ops" / "prod" / "plan.yaml").write_text(PLAN)
    monkeypatch.chdir(tmp_path)
    spellings = ["ops/prod/plan.yaml", "./ops/prod/plan.yaml", "ops/../ops/prod/plan.yaml",
                 str(tmp_path / "ops" / "prod" / "plan.yaml")]
    names = {record_name(load_plan(Path(spelling))) for spelling in spellings}
    assert len(names) == 1
    assert load_plan(Path(spellings[-1])).repository_path == "ops/prod/plan.yaml"


def test_different_plans_and_namespaces_have_different_records(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for target, namespace in (("prod", "shop"), ("staging", "shop"), ("prod-b", "shop-b")):
        (tmp_path / target).mkdir()
        (tmp_path / target / "plan.yaml").write_text(PLAN.replace("shop", namespace))
    names = {record_name(load_plan(Path(target) / "plan.yaml")) for target in ("prod", "staging", "prod-b")}
    assert len(names) == 3
