"""Rollback never guesses: apply stamps what it changes, and a rollback without a record for stamped objects refuses
unless given a record file or told to use the seed's fallback."""

import json
from pathlib import Path
from typing import Any

import pytest

from bench.chaos import doubled_writes
from cli.args import parse
from core.errors import InputError, PermanentError, TemporaryError
from core.executor import stamp_calls
from core.record import RECORD_ANNOTATION, STAMP_FIELD_MANAGER, record_name
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


def test_apply_stamps_existing_objects_before_the_first_change_and_a_described_hpa_carries_it_from_creation(
        world: World) -> None:
    assert apply(world).final == Outcome.SUCCEEDED

    assert world.cluster.stamps == [(0, ["deployment/web", "deployment/api"])], "no stamp call after the steps"
    name = record_name(world.load(str(world.plan_path)))
    for kind, object_name in [("Deployment", "web"), ("Deployment", "api"), ("HorizontalPodAutoscaler", "web")]:
        assert annotation(world.cluster.find(kind, object_name)) == name


def test_an_hpa_created_from_a_manifest_file_is_stamped_right_after_the_steps(world: World) -> None:
    with_manifest_hpa(world)

    assert apply(world).final == Outcome.SUCCEEDED

    assert world.cluster.stamps == [(0, ["deployment/web", "deployment/api"]), (3, ["hpa/web"])]
    assert annotation(world.cluster.find("HorizontalPodAutoscaler", "web")) == record_name(
        world.load(str(world.plan_path)))


def with_manifest_hpa(world: World) -> None:
    """The plan's HPA from hpa.yaml, a file that knows nothing of the stamp."""
    world.plan_path.with_name("hpa.yaml").write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
        "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, minReplicas: 4, maxReplicas: 8}\n")
    world.plan_path.write_text(world.plan_path.read_text().replace(
        "{type: apply_hpa, name: web, minReplicas: 4, maxReplicas: 8}",
        "{type: apply_hpa, name: web, manifest: hpa.yaml}"))


def test_a_stamp_the_cluster_refuses_fails_the_run_before_any_change(world: World) -> None:
    world.cluster.stamp_errors.append(PermanentError('Error from server (Forbidden): deployments.apps "web" is '
                                                     "forbidden"))

    report = apply(world)

    assert report.final == Outcome.FAILED
    name = record_name(world.load(str(world.plan_path)))
    assert report.lines[-1] == (f"error: could not stamp deployment/web, deployment/api with {RECORD_ANNOTATION}="
                                f"{name}: refused by the cluster (Error from server (Forbidden): deployments.apps "
                                '"web" is forbidden); nothing was changed')
    assert world.cluster.ran == [] and world.records.saves == [], "no step ran, no record was written"
    assert world.replicas("web") == 2


def test_a_stamp_still_failing_after_its_retries_says_so(world: World) -> None:
    unreachable = TemporaryError("The connection to the server 127.0.0.1:1 was refused")
    unreachable.attempts = 4  # type: ignore[attr-defined]  # set by the retrying task, as on KubectlError
    world.cluster.stamp_errors.append(unreachable)

    report = apply(world)

    assert report.final == Outcome.FAILED
    assert report.lines[-1].endswith(": still failing after 4 attempts (The connection to the server 127.0.0.1:1 "
                                     "was refused); nothing was changed")
    assert world.cluster.ran == []


def test_a_created_hpa_left_unstamped_is_a_note_the_record_covers(world: World) -> None:
    with_manifest_hpa(world)
    world.cluster.stamp_errors += [None, PermanentError("Error from server (Forbidden): forbidden")]

    report = apply(world)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert any(line.startswith("note: could not stamp hpa/web with ") and line.endswith(
        "the record still names what the run created") for line in report.lines)
    assert annotation(world.cluster.find("HorizontalPodAutoscaler", "web")) is None
    assert record_of(world).status == "succeeded"


def test_the_stamp_reads_its_objects_from_stdin_one_call_or_spread_over_a_few() -> None:
    few = [f"deployment/w{index}" for index in range(10)]
    many = [f"deployment/w{index}" for index in range(1000)]

    [(args, stdin)] = stamp_calls(few, "infra-plan-x")
    spread = stamp_calls(many, "infra-plan-x")

    assert args == ("patch", "-f", "-", "--type=merge",
                    f'-p={{"metadata":{{"annotations":{{"{RECORD_ANNOTATION}":"infra-plan-x"}}}}}}',
                    f"--field-manager={STAMP_FIELD_MANAGER}", "-o", "name")
    assert [json.loads(line)["metadata"]["name"] for line in stdin.splitlines()] == [f"w{i}" for i in range(10)]
    assert json.loads(stdin.splitlines()[0])["kind"] == "Deployment"
    assert [chunk.count("\n") for _, chunk in spread] == [250] * 4, "1,000 objects: four calls side by side"
    assert "".join(chunk for _, chunk in spread).count('"name": "w999"') == 1


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


def test_a_record_file_of_another_plan_version_reverses_what_was_applied(world: World) -> None:
    """Issue 23: the steps come from the record, so a record of an earlier plan version is used, and said."""
    apply(world)
    saved = forget_record(world)
    world.plan_path.write_text(world.plan_path.read_text() + "# edited\n")

    report = rollback(world, from_record=str(saved))

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert any(line.startswith("note: the plan changed since it was applied (sha256 ") for line in report.lines)
    assert world.replicas("web") == 2 and world.replicas("api") == 1


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
    assert any(line.startswith("note: no execution record for this plan: using the Node scripts' (v0) rollback")
               for line in report.lines)


def test_from_record_is_checked_by_the_cli(tmp_path: Path, world: World) -> None:
    apply(world)
    saved = forget_record(world)
    plan = str(world.plan_path)

    assert parse("rollback", [f"--plan={plan}", f"--from-record={saved}", "--seed-fallback"]).from_record == saved
    with pytest.raises(InputError, match=r"^arguments: --from-record: .* is not an existing file$"):
        parse("rollback", [f"--plan={plan}", f"--from-record={tmp_path / 'missing.json'}"])
    with pytest.raises(InputError, match="unknown flag"):
        parse("apply", [f"--plan={plan}", "--seed-fallback"])


def test_chaos_never_counts_a_repeated_stamp_as_a_doubled_write() -> None:
    """A rerun stamps again, and a stamp retried after a timeout may land twice: the same value, so harmless; a
    step's write landing twice is still found."""
    def patch(path: str, command: str, field_manager: str) -> dict[str, Any]:
        return {"method": "PATCH", "path": path, "command": command, "field_manager": field_manager, "status": 200}

    web = "/apis/apps/v1/namespaces/shop/deployments/web"
    requests = [patch(web, "kubectl patch", STAMP_FIELD_MANAGER), patch(web, "kubectl patch", STAMP_FIELD_MANAGER),
                patch(web, "kubectl patch", "kubectl-patch"), patch(web, "kubectl patch", "kubectl-patch")]

    assert doubled_writes(requests) == [f"PATCH {web} (kubectl patch) x2"]


def test_an_unreadable_record_refusal_names_both_ways_out_and_each_one_works(world: World) -> None:
    apply(world)
    saved = forget_record(world)
    world.records.unreadable = "plan.record.json"
    world.cluster.ran.clear()

    refused = rollback(world)

    assert refused.final == Outcome.SKIPPED and world.cluster.ran == []
    assert refused.lines[-1].startswith("Refusing to execute: plan.record.json: the apply record exists but cannot "
                                        "be read: truncated JSON; refusing rather than guessing")
    assert "--from-record FILE" in refused.lines[-1] and "--seed-fallback" in refused.lines[-1]

    assert rollback(world, from_record=str(saved)).final == Outcome.SUCCEEDED
    assert world.replicas("web") == 2 and world.cluster.find("HorizontalPodAutoscaler", "web") is None


def test_seed_fallback_counts_an_unreadable_record_as_none(world: World) -> None:
    apply(world)
    world.records.unreadable = "plan.record.json"
    world.cluster.ran.clear()

    report = rollback(world, seed_fallback=True)

    assert report.final == Outcome.SUCCEEDED, report.render()
    assert "note: plan.record.json: the apply record exists but cannot be read: truncated JSON; ignored " \
           "(--seed-fallback)" in report.lines
    assert world.cluster.ran[0] == ("rollout", "undo", "deployment/web")
