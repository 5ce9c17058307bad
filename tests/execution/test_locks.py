"""Issue 25: the lock and the Prefect concurrency limit follow what a run changes (cluster and namespace), never
the plan's `target`; a paused limit (0) makes a run wait up to its lock timeout, then refuse in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.conventions import lock_limit_name
from integrations.kubeconfig import IN_CLUSTER, cluster_of
from tests.execution.conftest import NAMESPACE, PLAN, PLAN_PATH, World

RUN_APPLY = """\
import json, sys
from flows.apply import infra_apply
state = infra_apply(plan=sys.argv[1], execute=True, pr=int(sys.argv[2]), lock_timeout_s=float(sys.argv[3]),
                    return_state=True)
report = state.result(raise_on_failure=False)
print(json.dumps([state.name, *report.lines]))
"""


@pytest.fixture
def paused_limit(prefect_api: str) -> Iterator[str]:
    """The sandbox cluster's `shop` namespace limit, set to 0 (paused from the UI)."""
    name = lock_limit_name("sandbox", NAMESPACE)
    httpx.post(f"{prefect_api}/v2/concurrency_limits/", json={"name": name, "limit": 0}, timeout=30).raise_for_status()
    try:
        yield name
    finally:
        httpx.delete(f"{prefect_api}/v2/concurrency_limits/{name}", timeout=30)


def test_a_plan_naming_another_target_still_waits_on_its_namespaces_paused_limit(world: World,
                                                                                paused_limit: str) -> None:
    world.write_plan(PLAN.replace("target: prod", "target: stagingx"))
    world.label("execute-plan")
    world.kube.clear_requests()
    result = subprocess.run([sys.executable, "-c", RUN_APPLY, PLAN_PATH, str(world.pr), "3"], cwd=world.root,
                            env=world.env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    state, *lines = json.loads(result.stdout.splitlines()[-1])
    assert state == "Refused", state
    assert lines[-1] == (f"Refusing to execute: Prefect concurrency limit {paused_limit} admitted no run for 3s "
                         "(Slots requested is greater than the limit; a limit of 0 pauses runs)."), lines
    assert "Traceback" not in output and "ConcurrencySlotAcquisitionError" not in output
    assert [r for r in world.kube.requests() if r.get("method") in ("POST", "PUT", "PATCH", "DELETE")] == []
    assert world.replicas("web") == 2


def test_the_limit_is_named_by_cluster_and_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: prod-eu\ncontexts: []\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{config}")
    assert cluster_of(None) == "prod-eu" and cluster_of("staging") == "staging"
    assert lock_limit_name(cluster_of(None), "shop") == "infra-lock-prod-eu.shop"
    assert lock_limit_name("a-b", "c") != lock_limit_name("a", "b-c")
    assert lock_limit_name("arn:aws:eks:x:1:cluster/Prod", "shop") != lock_limit_name("arn-aws-eks-x-1-cluster-prod",
                                                                                       "shop")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert cluster_of(None) == IN_CLUSTER
