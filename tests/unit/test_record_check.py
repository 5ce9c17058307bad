"""The pure checks on a record before a rollback acts on it, the chain's reversal, the record key and the bounded
inflate: in memory, no cluster."""

import gzip
import json
import stat
from dataclasses import replace
from pathlib import Path
from secrets import token_hex
from typing import Any

import pytest

from core.apply import Binding, prepare_apply, step_finished, with_after_states
from core.plan import load_plan
from core.record import ApplyRecord, from_data, from_json
from core.record_check import RecordCorrupt, action_data, check_state, checked_actions, recorded_action
from core.report import StepResult
from core.reversal import reversals
from core.vocabulary import StepStatus, Verdict
from integrations import records
from integrations.record_key import RecordKeyError, record_keys
from tests.unit.fakes import NAMESPACE, PLAN, deployment

HPA: dict[str, Any] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                       "metadata": {"name": "web", "namespace": NAMESPACE},
                       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                                "minReplicas": 1, "maxReplicas": 3}}


def plan_at(tmp_path: Path, text: str = PLAN) -> Any:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return load_plan(path)


def applied(plan: Any, objects: list[dict[str, Any]], existing: ApplyRecord | None = None,
            digest: str = "d1") -> ApplyRecord:
    """The record of a successful apply of `plan` over `objects` (which it changes as the plan says)."""
    record = prepare_apply(plan, objects, existing, Binding(digest, 7, "abc", "run", {})).record
    for number in range(1, len(record.steps) + 1):
        record = step_finished(record, StepResult(_step(plan, number), StepStatus.SUCCEEDED))
    for action in plan.actions:
        for item in objects:
            if getattr(action, "replicas", None) is not None and item["metadata"]["name"] == action.workload.name:
                item["spec"]["replicas"] = action.replicas
    return with_after_states(record, plan, objects)


def _step(plan: Any, number: int) -> Any:
    from core.steps import apply_steps

    return apply_steps(plan)[number - 1]


def test_every_action_round_trips_through_its_recorded_form(tmp_path: Path) -> None:
    plan = plan_at(tmp_path, PLAN + "  - {type: update_resources, name: api, container: app, "
                                    "requests: {cpu: 100m}}\n")
    for action in plan.actions:
        assert recorded_action(json.loads(json.dumps(action_data(action)))) == action


@pytest.mark.parametrize("spec, phrase", [
    ({"type": "scale_workload", "kind": "Secret", "name": "web", "replicas": 1}, "names a 'Secret'"),
    ({"type": "scale_workload", "kind": "Deployment", "name": "Web!", "replicas": 1}, "name 'Web!'"),
    ({"type": "scale_workload", "kind": "Deployment", "name": "web", "replicas": -1}, "is not a replica count"),
    ({"type": "scale_workload", "kind": "Deployment", "name": "web", "replicas": 1, "namespace": "x"},
     "holds 'namespace'"),
    ({"type": "delete_namespace", "name": "web"}, "is not one apply runs"),
    ({"type": "apply_hpa", "kind": "Namespace", "name": "web"}, "names a 'Namespace'"),
])
def test_an_action_apply_could_not_have_run_is_refused(spec: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        recorded_action(spec)


@pytest.mark.parametrize("manifest, phrase", [
    ({**HPA, "kind": "Secret", "apiVersion": "v1"}, "not an autoscaling HorizontalPodAutoscaler"),
    ({**HPA, "kind": "Namespace", "apiVersion": "v1"}, "not an autoscaling HorizontalPodAutoscaler"),
    ({**HPA, "metadata": {"name": "api", "namespace": NAMESPACE}}, "is hpa/api, not hpa/web"),
    ({**HPA, "metadata": {"name": "web", "namespace": "kube-system"}}, "namespace 'kube-system', not shop"),
    ({**HPA, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}}}, "targets 'Deployment/api'"),
    ({**HPA, "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "web"}}}, "targets 'StatefulSet/web'"),
    ({**HPA, "status": {}}, "holds 'status'"),
    ({**HPA, "metadata": {"name": "web", "ownerReferences": []}}, "holds 'ownerReferences'"),
])
def test_a_prior_hpa_must_be_the_actions_hpa(tmp_path: Path, manifest: dict[str, Any], phrase: str) -> None:
    action = plan_at(tmp_path).actions[2]
    check_state(action, {"spec": HPA["spec"], "manifest": HPA}, NAMESPACE, "before")  # the genuine one passes
    with pytest.raises(ValueError, match=phrase):
        check_state(action, {"spec": manifest.get("spec", {}), "manifest": manifest}, NAMESPACE, "before")


def test_only_the_fields_an_action_changes_may_be_restored(tmp_path: Path) -> None:
    plan = plan_at(tmp_path, PLAN + "  - {type: update_resources, name: api, container: app, "
                                    "requests: {cpu: 100m}}\n")
    scale, resources = plan.actions[0], plan.actions[3]
    with pytest.raises(ValueError, match="holds 'template'"):
        check_state(scale, {"replicas": 2, "hpa": None, "template": {}}, NAMESPACE, "before")
    with pytest.raises(ValueError, match="restores container 'sidecar'"):
        check_state(resources, {"containers": {"sidecar": {}}, "indexes": {"sidecar": 1}}, NAMESPACE, "before")
    with pytest.raises(ValueError, match="not a quantity"):
        check_state(resources, {"containers": {"app": {"limits": {"cpu": "lots"}}}, "indexes": {"app": 0}},
                    NAMESPACE, "before")


def test_a_step_must_change_the_object_its_action_names(tmp_path: Path) -> None:
    plan = plan_at(tmp_path)
    record = applied(plan, [deployment("web", 2), deployment("api", 1)])
    moved = record.with_step(replace(record.step(1), obj="deployment/api"))
    with pytest.raises(RecordCorrupt, match="step 1: corrupt apply record: the step changes 'deployment/api'"):
        checked_actions(moved, NAMESPACE, "the record")
    with pytest.raises(RecordCorrupt, match="of namespace 'shop', not the plan's other"):
        checked_actions(record, "other", "the record")


@pytest.mark.parametrize("change, phrase", [
    (lambda data: data.update(steps=[]), "has no steps"),
    (lambda data: data.update(version=7), "record version 7 is not one this version reads"),
    (lambda data: data.update(version=1), "written before records were bound and signed"),
    (lambda data: data.pop("digest"), "missing field 'digest'"),
    (lambda data: data.update(pr="7"), r"record.pr: expected int"),
    (lambda data: data["steps"][0].pop("spec"), r"steps\[0\]: missing field 'spec'"),
    (lambda data: data.update(evil=1), "unknown field 'evil'"),
])
def test_a_malformed_record_is_one_line(tmp_path: Path, change: Any, phrase: str) -> None:
    data = json.loads(applied(plan_at(tmp_path), [deployment("web", 2), deployment("api", 1)]).to_json())
    change(data)
    with pytest.raises(ValueError, match=phrase) as caught:
        from_data(data)
    assert "\n" not in str(caught.value)


def test_a_chain_of_applies_restores_the_state_before_the_first(tmp_path: Path) -> None:
    """2 -> 4 (v1) -> 5 (v2): the rollback scales 5 -> 4, then 4 -> 2, each preconditioned on the one before."""
    objects = [deployment("web", 2), deployment("api", 1)]
    first = applied(plan_at(tmp_path), objects)
    second_plan = plan_at(tmp_path, PLAN.replace("name: web, replicas: 4", "name: web, replicas: 5"))
    second = applied(second_plan, objects, existing=replace(first, status="succeeded"), digest="d2")

    assert [link.digest for link in second.chain] == ["d2", "d1"]
    assert second.earlier[0].step(1).before["replicas"] == 2 and second.step(1).before["replicas"] == 4
    assert from_json(second.to_json()) == second
    scales = [(r.verdict, r.step.args) for r in reversals(second_plan, second, objects)
              if r.step.args[:2] == ("scale", "deployment/web")]
    assert scales == [(Verdict.REVERSE, ("scale", "deployment/web", "--replicas=4", "--current-replicas=5")),
                      (Verdict.REVERSE, ("scale", "deployment/web", "--replicas=2", "--current-replicas=4"))]


def test_reversal_follows_the_record_not_the_plan_as_it_is_now(tmp_path: Path) -> None:
    objects = [deployment("web", 2), deployment("api", 1)]
    record = applied(plan_at(tmp_path), objects)
    objects.append(deployment("cache", 1))
    edited = plan_at(tmp_path, "namespace: shop\nactions:\n  - {type: scale_workload, name: cache, replicas: 5}\n")

    undo = [r.step.args for r in reversals(edited, record, objects) if r.verdict == Verdict.REVERSE]

    assert ("scale", "deployment/web", "--replicas=2", "--current-replicas=4") in undo
    assert not any("deployment/cache" in args for args in undo), "cache was scaled by no apply"


def test_an_object_stamped_by_another_record_is_drifted(tmp_path: Path) -> None:
    objects = [deployment("web", 2), deployment("api", 1)]
    plan = plan_at(tmp_path)
    record = applied(plan, objects)
    objects[0]["metadata"]["annotations"] = {"infra-orchestrator.io/record": "infra-record-someoneelse"}

    judged = {r.step.args[:2]: r for r in reversals(plan, record, objects)}

    assert judged[("scale", "deployment/web")].verdict == Verdict.DRIFTED
    assert judged[("scale", "deployment/web")].stamped_by == "infra-record-someoneelse"


def test_the_record_key_signs_rotates_and_defaults_to_a_private_file(tmp_path: Path) -> None:
    # Random keys: a key is registered as a secret for the rest of the process, and "n" * 32 would mask the
    # names of later tests' plans
    old, new = token_hex(16), token_hex(16)
    signed_old = record_keys({"INFRA_RECORD_KEY": old}).sign("text")
    rotated = record_keys({"INFRA_RECORD_KEY": new, "INFRA_RECORD_KEYS_OLD": old})
    assert rotated.verifies(*signed_old, "text") is True
    assert rotated.verifies(signed_old[0], signed_old[1], "texT") is False
    assert record_keys({"INFRA_RECORD_KEY": new}).verifies(*signed_old, "text") is None, "an unknown key id"
    with pytest.raises(RecordKeyError, match="at least 16 characters"):
        record_keys({"INFRA_RECORD_KEY": "short"})

    home = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    first, again = record_keys(home), record_keys(dict(home, HOME="elsewhere"))
    path = tmp_path / "config" / "infra-orchestrator" / "record.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and first.by_id == again.by_id
    shared = tmp_path / "shared" / "infra-orchestrator" / "record.key"
    shared.parent.mkdir(parents=True)
    shared.write_text("k" * 64)
    shared.chmod(0o644)
    with pytest.raises(RecordKeyError, match="readable or writable by others"):
        record_keys({"XDG_CONFIG_HOME": str(tmp_path / "shared")})


def test_inflating_stops_at_the_plans_bound() -> None:
    bomb = gzip.compress(b" " * (4 * 1024 * 1024))
    assert len(bomb) < 8 * 1024
    with pytest.raises(RecordCorrupt, match="inflates to more than 1000 bytes"):
        records._inflated("configmap/x", bomb, 1000)
    assert records._inflated("configmap/x", gzip.compress(b"{}"), 1000) == "{}"


def test_a_succeeded_record_whose_objects_moved_is_applied_again_keeping_its_prior_states(tmp_path: Path) -> None:
    objects = [deployment("web", 2), deployment("api", 1)]
    plan = plan_at(tmp_path)
    first = replace(applied(plan, objects), status="succeeded")
    objects[0]["spec"]["replicas"] = 6  # someone scaled web since

    prepared = prepare_apply(plan, objects, first, Binding("d1", 7, "abc", "run-2", {}))

    assert [step.obj for step in prepared.to_run] == ["deployment/web", "deployment/api", "hpa/web"]
    assert prepared.note is not None and "deployment/web is not as it left it: applying" in prepared.note
    assert prepared.record.earlier[0].step(1).before["replicas"] == 2, "the true prior state is kept"
    unmoved = prepare_apply(plan, [deployment("web", 4), deployment("api", 3)], first,
                            Binding("d1", 7, "abc", "run-3", {}))
    assert unmoved.to_run == [] and unmoved.note == "this plan was already applied: nothing to do"
