"""A run's parameters reach the Prefect server as the plain JSON they are (flows/decorator.py), without Prefect's
serializer and the FastAPI import it costs every CLI run; a value that is not plain JSON still goes through it."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flows.decorator import PlainJsonFlow, plain_json
from tests.execution.conftest import PLAN_PATH, World


def test_plain_json_values() -> None:
    assert plain_json({"a": [1, 2.5, "x", None, True]}) and plain_json([]) and plain_json("plan.yaml")
    assert not plain_json(Path("plan.yaml"))
    assert not plain_json({1: "key not a string"})
    assert not plain_json([{"nested": {"deeper": object()}}])


def test_a_value_that_is_not_plain_json_goes_through_prefects_serializer() -> None:
    def body(plan: Any = None) -> None:
        return None

    flow = PlainJsonFlow(body, name="parameters")
    assert flow.serialize_parameters({"plan": "a.yaml", "pr": 3}) == {"plan": "a.yaml", "pr": 3}
    assert flow.serialize_parameters({"plan": Path("a.yaml")}) == {"plan": "a.yaml"}  # jsonable_encoder's answer


def test_a_cli_run_stores_its_parameters_and_never_imports_fastapi(world: World) -> None:
    since = datetime.now(UTC).isoformat()
    world.label("execute-plan")
    applied = world.cli("apply", "--execute", f"--pr={world.pr}", PYTHONPROFILEIMPORTTIME="1")
    assert applied.stdout.splitlines()[-1] == "succeeded", applied.stdout + applied.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in applied.stderr.splitlines() if "|" in line]
    assert "prefect.flow_engine" in imported  # the import log is there, so FastAPI's absence from it means something
    assert not [name for name in imported if name.split(".")[0] == "fastapi"]

    body = {"flow_runs": {"name": {"any_": [f"apply prod PR#{world.pr}"]}, "start_time": {"after_": since}}}
    runs = httpx.post(f"{world.env['PREFECT_API_URL']}/flow_runs/filter", json=body, timeout=10).json()
    assert len(runs) == 1, runs
    assert runs[0]["parameters"] == {"plan": PLAN_PATH, "pr": world.pr, "execute": True, "atomic": False,
                                     "require_approval": False, "rollout_timeout_s": 120, "lock_timeout_s": 300,
                                     "repository": None, "head_sha": None, "require_plan": False, "policy": None}
