"""Issue 23, tried as an attacker and an unlucky operator would: through the CLI, real kubectl, the sandbox API
server and the GitHub gate. A record is used only when it verifies (HMAC) and its content is something apply could
have written; a rollback reverses what was applied (from the record), across a chain of applies of an edited plan;
stale records reverse nothing; the record write is a compare-and-swap."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from core.plan import load_plan
from core.record import record_name
from integrations import records
from tests.execution.conftest import NAMESPACE, PLAN, PLAN_PATH, REPO, World

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
NEXT_PLAN = PLAN.replace("replicas: 4}", "replicas: 5}")
"""The same plan, edited: web to 5 instead of 4."""


def _record_name(world: World) -> str:
    cwd = os.getcwd()
    os.chdir(world.root)  # a record's name derives from the plan's repository path
    try:
        return record_name(load_plan(world.root / PLAN_PATH))
    finally:
        os.chdir(cwd)


def applied(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    world.label("execute-plan")
    result = world.cli("apply", "--execute", f"--pr={world.pr}", *args)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "succeeded", result.stdout + result.stderr
    return result


def rollback(world: World, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    world.label("rollback-plan")
    return world.cli("rollback", "--execute", f"--pr={world.pr}", *args, **env)


def stored(world: World) -> dict[str, Any]:
    """The stored form (the record's fields and its signature) of the plan's record in the cluster."""
    index = world.kube.get("configmap", NAMESPACE, _record_name(world))
    assert index is not None and index["data"]["chunks"] == "0"
    return json.loads(gzip.decompress(base64.b64decode(index["binaryData"]["record.json.gz"])))  # type: ignore[no-any-return]


def store(world: World, blob: bytes) -> None:
    """Replace the record's ConfigMap content, as someone who can edit ConfigMaps in the namespace would."""
    index = world.kube.get("configmap", NAMESPACE, _record_name(world))
    assert index is not None
    index["binaryData"] = {"record.json.gz": base64.b64encode(blob).decode()}
    world.kube.kubectl("-n", NAMESPACE, "replace", "-f", "-", input=json.dumps(index), check=True)


def store_data(world: World, data: dict[str, Any]) -> None:
    store(world, gzip.compress(json.dumps(data).encode()))


def edited(world: World, change: Callable[[dict[str, Any]], None], resign: bool) -> None:
    """Change the stored record's data; `resign`: sign it again with the workers' key (so that only the content
    checks can catch it), else leave the signature as it was (a namespace editor has no key)."""
    data = stored(world)
    signature = data.pop("signature")
    change(data)
    store_data(world, records.signed(data) if resign else {**data, "signature": signature})


def assert_failed_unchanged(world: World, result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """One `error:` line saying why, then `failed`, exit 1, no traceback, and no write to anything but records."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert result.stdout.splitlines()[-1] == "failed", output
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(phrase in errors[0] for phrase in phrases), output
    assert "Traceback" not in output
    assert_nothing_changed(world)


def assert_nothing_changed(world: World) -> None:
    written = [request for request in world.kube.requests() if request.get("method") in MUTATING
               and "/configmaps" not in request["path"] and "/leases" not in request["path"]]
    assert written == [], written


def hpa_step(record: dict[str, Any]) -> dict[str, Any]:
    return next(step for step in record["steps"] if step["action"] == "apply_hpa")


def prior_hpa(manifest: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        step = hpa_step(record)
        step["before"] = {"spec": manifest.get("spec", {}), "manifest": manifest}
    return change


SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web", "namespace": NAMESPACE},
          "spec": {}}
NAMESPACE_OBJECT = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}, "spec": {}}
HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
       "metadata": {"name": "web", "namespace": NAMESPACE},
       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 2}}
OTHER_WORKLOAD = {**HPA, "spec": {**HPA["spec"], "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                      "name": "api"}}}
OTHER_NAMESPACE = {**HPA, "metadata": {"name": "web", "namespace": "kube-system"}}


def test_a_record_edited_in_the_cluster_does_not_verify(world: World) -> None:
    applied(world)
    edited(world, prior_hpa(SECRET), resign=False)
    world.kube.clear_requests()

    result = rollback(world)

    assert_failed_unchanged(world, result, f"configmap/{_record_name(world)} in namespace {NAMESPACE}",
                            "its signature does not verify", "--from-record FILE")
    assert world.replicas("web") == 4


@pytest.mark.parametrize("manifest, phrase", [
    (SECRET, "'v1' 'Secret', not an autoscaling HorizontalPodAutoscaler"),
    (NAMESPACE_OBJECT, "'v1' 'Namespace', not an autoscaling HorizontalPodAutoscaler"),
    (OTHER_WORKLOAD, "targets 'Deployment/api', not Deployment/web"),
    (OTHER_NAMESPACE, "is in namespace 'kube-system', not shop"),
], ids=["secret", "namespace", "another-workload", "another-namespace"])
def test_a_signed_record_whose_prior_hpa_is_not_the_actions_hpa_is_corrupt(
        world: World, manifest: dict[str, Any], phrase: str) -> None:
    applied(world)
    edited(world, prior_hpa(manifest), resign=True)
    world.kube.clear_requests()

    result = rollback(world)

    assert_failed_unchanged(world, result, "corrupt apply record", phrase)


def test_a_signed_record_restoring_a_field_the_action_does_not_change_is_corrupt(world: World) -> None:
    applied(world)

    def change(record: dict[str, Any]) -> None:
        step = next(step for step in record["steps"] if step["action"] == "scale_workload")
        step["before"]["template"] = {"spec": {"containers": [{"name": "app", "image": "evil"}]}}

    edited(world, change, resign=True)
    world.kube.clear_requests()

    assert_failed_unchanged(world, rollback(world), "corrupt apply record", "'template', a field the action does "
                                                                             "not change")


def forged_copy(world: World) -> str:
    """The record as the mirror holds it, re-pointed at another workload, signed with a key no worker holds."""
    data = json.loads((world.root / PLAN_PATH).with_name("plan.record.json").read_text())
    step = next(step for step in data["steps"] if step["action"] == "scale_workload")
    step["before"]["replicas"] = 0
    data["signature"]["hmac"] = "0" * 64
    return json.dumps(data)


def test_a_forged_mirror_is_not_used(world: World) -> None:
    applied(world)
    forged = forged_copy(world)
    world.kube.kubectl("-n", NAMESPACE, "delete", "configmap", _record_name(world), check=True)
    (world.root / PLAN_PATH).with_name("plan.record.json").write_text(forged)
    world.kube.clear_requests()

    result = rollback(world)

    assert_failed_unchanged(world, result, "plan.record.json: corrupt apply record", "does not verify")
    assert world.replicas("web") == 4


def test_a_forged_from_record_file_is_not_used(world: World) -> None:
    applied(world)
    forged = world.root / "saved.json"
    forged.write_text(forged_copy(world))
    world.kube.kubectl("-n", NAMESPACE, "delete", "configmap", _record_name(world), check=True)
    world.kube.clear_requests()

    result = rollback(world, f"--from-record={forged}")

    assert_failed_unchanged(world, result, f"{forged}: corrupt apply record", "does not verify")


def test_a_verified_from_record_copy_restores(world: World) -> None:
    applied(world)
    saved = world.root / "saved.json"
    saved.write_text((world.root / PLAN_PATH).with_name("plan.record.json").read_text())
    world.kube.kubectl("-n", NAMESPACE, "delete", "configmap", _record_name(world), check=True)

    result = rollback(world, f"--from-record={saved}")

    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "succeeded", result.stdout + result.stderr
    assert world.replicas("web") == 2 and world.hpa("web") is None


def test_a_plan_edited_between_apply_and_rollback_reverses_what_was_applied(world: World) -> None:
    applied(world)
    world.write_plan("""\
namespace: shop
target: prod
actions:
  - {type: scale_workload, name: api, replicas: 5}
  - {type: scale_workload, name: web, replicas: 9}
""")
    preview = world.cli("rollback")
    result = rollback(world)

    output = result.stdout + result.stderr
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "succeeded", output
    for text in (preview.stdout, result.stdout):
        assert any(line.startswith("note: the plan changed since it was applied (sha256 ") for line in
                   text.splitlines()), text
    assert world.replicas("web") == 2 and world.replicas("api") == 1, "api was never scaled: it is left alone"
    assert world.resources("api")["limits"] == {"cpu": "200m"} and world.hpa("web") is None
    assert "preview: kubectl -n shop delete hpa web" in preview.stdout


def test_a_plan_edited_between_two_applies_rolls_back_to_before_the_first(world: World) -> None:
    applied(world)
    assert world.replicas("web") == 4
    world.write_plan(NEXT_PLAN)
    second = applied(world)
    assert world.replicas("web") == 5
    assert "this apply keeps its own prior states after the earlier one's" in second.stdout
    record = stored(world)
    assert record["earlier"][0]["steps"][0]["before"]["replicas"] == 2
    assert record["pr"] == world.pr and len(record["head_sha"]) == 40 and len(record["run_id"]) == 36
    assert set(record["files"]) == {PLAN_PATH} and record["files"][PLAN_PATH] == record["digest"]

    result = rollback(world)

    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "succeeded", result.stdout + result.stderr
    assert world.replicas("web") == 2, "2 -> 4 -> 5 rolls back to 2"
    assert world.resources("api")["limits"] == {"cpu": "200m"} and world.hpa("web") is None


def test_a_stale_mirror_does_not_make_apply_skip(world: World) -> None:
    applied(world)
    mirror = (world.root / PLAN_PATH).with_name("plan.record.json")
    old = mirror.read_text()
    assert rollback(world).returncode == 0 and world.replicas("web") == 2
    world.kube.kubectl("-n", NAMESPACE, "delete", "configmap", _record_name(world), check=True)
    mirror.write_text(old)  # a succeeded record copied back, while nothing of it is applied

    world.label("execute-plan")
    result = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "succeeded", result.stdout + result.stderr
    assert "nothing to do" not in result.stdout
    assert any("the record says this plan was applied, but deployment/web" in line for line in
               result.stdout.splitlines()), result.stdout
    assert world.replicas("web") == 4


OTHER_PATH = "ops/plans/infra-scale/other/plan.yaml"
OTHER_PLAN = f"""\
namespace: {NAMESPACE}
target: other
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
"""


def test_a_rolled_back_record_reverses_nothing_after_another_plan(world: World) -> None:
    applied(world)
    assert rollback(world).returncode == 0 and world.replicas("web") == 2
    (world.root / OTHER_PATH).parent.mkdir(parents=True)
    (world.root / OTHER_PATH).write_text(OTHER_PLAN)
    world.github.change_file(REPO, world.pr, OTHER_PATH, OTHER_PLAN)
    world.label("execute-plan")
    other = world.cli("apply", "--execute", f"--pr={world.pr}", f"--plan={OTHER_PATH}")
    assert other.returncode == 0 and world.replicas("web") == 4, other.stdout + other.stderr
    world.kube.clear_requests()

    result = rollback(world)

    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("note: this apply record was already rolled back at ") for line in
               result.stdout.splitlines()), result.stdout
    assert world.replicas("web") == 4, "the other plan's change stays"
    assert_nothing_changed(world)


def test_an_object_stamped_by_another_record_is_drift(world: World) -> None:
    applied(world)
    other_plan = OTHER_PLAN.replace("name: web, replicas: 4", "name: api, replicas: 1")  # api's count: a stamp only
    (world.root / OTHER_PATH).parent.mkdir(parents=True)
    (world.root / OTHER_PATH).write_text(other_plan)
    world.github.change_file(REPO, world.pr, OTHER_PATH, other_plan)
    world.label("execute-plan")
    other = world.cli("apply", "--execute", f"--pr={world.pr}", f"--plan={OTHER_PATH}")
    assert other.returncode == 0, other.stdout + other.stderr

    result = rollback(world)

    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("note: deployment/api carries infra-orchestrator.io/record=") and "drifted" in line
               for line in result.stdout.splitlines()), result.stdout
    assert world.resources("api")["limits"] == {"cpu": "600m"}, "left alone"
    assert world.replicas("web") == 2, "the rest is rolled back"
    forced = rollback(world, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert world.resources("api")["limits"] == {"cpu": "200m"}


@pytest.mark.parametrize("damage", ["empty", "unknown-version", "missing-field", "truncated", "oversized"])
def test_a_damaged_record_is_one_line_and_nothing_changes(world: World, damage: str) -> None:
    applied(world)
    if damage == "empty":
        edited(world, lambda record: record.update(steps=[]), resign=True)
    elif damage == "unknown-version":
        edited(world, lambda record: record.update(version=9), resign=True)
    elif damage == "missing-field":
        edited(world, lambda record: record.pop("digest"), resign=True)
    elif damage == "truncated":
        blob = gzip.compress(json.dumps(stored(world)).encode())  # a whole stream, cut in half
        store(world, blob[: len(blob) // 2])
    else:
        store(world, gzip.compress(b" " * (8 * 1024 * 1024)))  # a few KiB that inflate past any 3-action record
    world.kube.clear_requests()

    result = rollback(world)

    output = result.stdout + result.stderr
    assert "Traceback" not in output
    last = result.stdout.splitlines()[-2:]
    if damage == "truncated":
        assert last[1] == "skipped" and last[0].startswith("Refusing to execute: ") and "truncated" in last[0], output
    else:
        phrase = {"empty": "has no steps", "unknown-version": "record version 9 is not one this version reads",
                  "missing-field": "missing field 'digest'", "oversized": "inflates to more than"}[damage]
        assert_failed_unchanged(world, result, "corrupt apply record", phrase)
    assert_nothing_changed(world)
    assert world.replicas("web") == 4


def test_a_record_written_by_someone_else_during_the_run_stops_it(world: World) -> None:
    """Compare-and-swap: while the apply's first scale is held at the server, someone rewrites the record (a
    genuine one: another run's); the apply's next save conflicts, does not overwrite it, and the run stops naming
    what is stored."""
    world.write_plan("""\
namespace: shop
target: prod
actions:
  - {type: scale_workload, name: web, replicas: 4}
  - {type: apply_hpa, name: web, minReplicas: 4, maxReplicas: 8}
""")
    world.kube.faults.add(method="PUT", path_regex=r"/deployments/web/scale$", latency_s=6, count=1)
    world.label("execute-plan")
    done: list[subprocess.CompletedProcess[str]] = []
    runner = threading.Thread(target=lambda: done.append(world.cli("apply", "--execute", f"--pr={world.pr}")))
    runner.start()
    deadline = time.monotonic() + 120
    while world.kube.get("configmap", NAMESPACE, _record_name(world)) is None:
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.1)
    data = stored(world)
    data.pop("signature")
    store_data(world, records.signed({**data, "pr": 99, "run_id": "someone-else"}))
    runner.join(240)
    result = done[0]

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "was written by someone else since this run last read it" in result.stdout, output
    assert "the record of PR #99 (run someone-else" in result.stdout, output
    assert "Traceback" not in output
    assert stored(world)["pr"] == 99, "the other writer's record stands"


def test_the_key_from_a_secret_block_signs_and_another_key_is_refused_by_id(world: World) -> None:
    """The production setup: INFRA_RECORD_KEY_BLOCK names a Prefect Secret block (`new,old`: rotation). A worker
    holding only another key refuses the record, naming it and what to configure; the key is never printed."""
    from prefect.blocks.system import Secret

    key, old = "k" * 40, "o" * 40
    Secret(value=f"{key},{old}").save("infra-record-key", overwrite=True)
    world.env["INFRA_RECORD_KEY_BLOCK"] = "infra-record-key"
    first = applied(world)
    world.kube.clear_requests()

    stranger = rollback(world, INFRA_RECORD_KEY="s" * 40)
    assert_failed_unchanged(world, stranger, f"configmap/{_record_name(world)} in namespace {NAMESPACE}",
                            "which this worker does not hold", "INFRA_RECORD_KEY")
    rotated = rollback(world, INFRA_RECORD_KEY="n" * 40, INFRA_RECORD_KEYS_OLD=key)
    assert rotated.returncode == 0 and world.replicas("web") == 2, rotated.stdout + rotated.stderr
    for text in (first.stdout, first.stderr, stranger.stdout, stranger.stderr, rotated.stdout, rotated.stderr):
        assert key not in text and old not in text
