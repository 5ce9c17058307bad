from pathlib import Path

import pytest

from tests.unit.fakes import PLAN, FakeCluster, World, deployment


@pytest.fixture
def world(tmp_path: Path) -> World:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    return World(plan, FakeCluster([deployment("web", 2), deployment("api", 1)], directory=tmp_path))
