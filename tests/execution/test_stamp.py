"""Rollback never guesses, through the CLI with real kubectl against the sandbox: apply stamps what it changes,
and with the record lost the rollback refuses until it is given a saved copy."""

import shutil

from core.record import RECORD_ANNOTATION, STAMP_FIELD_MANAGER
from tests.execution.conftest import NAMESPACE, World
from tests.execution.test_attacks import hpa, with_files
from tests.execution.test_scenarios import apply, rollback

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def stamp_of(item: dict | None) -> str | None:  # type: ignore[type-arg]
    assert item is not None
    return item["metadata"].get("annotations", {}).get(RECORD_ANNOTATION)  # type: ignore[no-any-return]


def test_a_lost_record_refuses_the_rollback_until_a_saved_copy_is_given(world: World) -> None:
    applied = apply(world)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    [record_map] = world.kube.list_objects("ConfigMap", NAMESPACE)
    name = record_map["metadata"]["name"]
    assert [stamp_of(world.deployment("web")), stamp_of(world.deployment("api")), stamp_of(world.hpa("web"))] == [
        name] * 3
    mirror = world.plan.with_name("plan.record.json")
    saved = world.root / "saved.record.json"
    shutil.copy(mirror, saved)
    world.kube.kubectl("-n", NAMESPACE, "delete", "configmap", name, check=True)
    mirror.unlink()
    world.kube.clear_requests()

    refused = rollback(world)

    assert refused.returncode == 0, refused.stdout + refused.stderr
    assert refused.stdout.splitlines()[-1] == "skipped"
    refusal = refused.stdout.splitlines()[-2]
    assert refusal.startswith("Refusing to execute: no apply record for this plan, but deployment/web, "
                              f"deployment/api, hpa/web carry {RECORD_ANNOTATION}={name}")
    assert "--from-record FILE" in refusal and "--seed-fallback" in refusal
    touched = [r for r in world.kube.requests() if r["method"] in MUTATING and "/leases/" not in r["path"]
               and not r["path"].endswith("/leases")]
    assert touched == [], "nothing but the lock was written"
    assert world.replicas("web") == 4 and world.hpa("web") is not None

    restored = rollback(world, f"--from-record={saved}")

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert restored.stdout.splitlines()[-1] == "succeeded"
    assert world.replicas("web") == 2 and world.hpa("web") is None
    assert world.resources("api") == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m"}}


def test_a_record_file_that_does_not_verify_fails_the_rollback(world: World) -> None:
    """Issue 23 moves this check into the run, which holds the record key: one `error:` line, exit 1."""
    other = world.root / "other.record.json"
    other.write_text('{"version": 1}')

    result = rollback(world, f"--from-record={other}")

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        f"error: {other}: corrupt apply record: a version-1 record (written before records were bound and signed) is "
        "not acted on; roll back with the version of infra-orchestrator that applied it, or with --seed-fallback",
        "failed"]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_refused_stamp_changes_nothing_and_a_transient_one_is_retried(world: World) -> None:
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/api$", field_manager=STAMP_FIELD_MANAGER,
                          status=403, count=1, message='deployments.apps "api" is forbidden: no annotations here')
    world.kube.clear_requests()

    refused = apply(world)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    *_, error, last = refused.stdout.splitlines()
    assert last == "failed"
    assert error.startswith("error: could not stamp deployment/web, deployment/api with "
                            f"{RECORD_ANNOTATION}=") and error.endswith("; nothing was changed"), error
    assert "refused by the cluster" in error and "is forbidden: no annotations here" in error
    changed = {r["field_manager"] for r in world.kube.requests() if r["method"] in MUTATING and r["status"] < 300
               and "/leases" not in r["path"]}
    assert changed == {STAMP_FIELD_MANAGER}, "the stamp alone was written, no step ran and no record was saved"
    assert world.replicas("web") == 2 and world.hpa("web") is None
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/web$", field_manager=STAMP_FIELD_MANAGER,
                          status=503, count=2)
    world.kube.clear_requests()

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert world.kube.kubectl_invocations(field_manager=STAMP_FIELD_MANAGER) == 3, \
        "3 tries before the first change, none after: the new HPA carries the stamp from its creation"
    assert world.replicas("web") == 4
    assert stamp_of(world.deployment("web")) == stamp_of(world.hpa("web")) is not None


def test_a_stamp_still_failing_after_its_retries_is_one_error_line_without_a_traceback(world: World) -> None:
    """Chaos seed 20: every stamp PATCH of one object dropped, so the stamp's retries all fail."""
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/api$", field_manager=STAMP_FIELD_MANAGER, drop=True)
    world.kube.clear_requests()

    failed = apply(world)

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr, failed.stderr[-3000:]
    *_, error, last = failed.stdout.splitlines()
    assert last == "failed"
    assert error.startswith("error: could not stamp ") and "still failing after" in error, error
    assert error.endswith("; nothing was changed"), error


def test_an_unreadable_record_refuses_a_second_apply_and_changes_nothing(world: World) -> None:
    """The record is read while the objects are (a Prefect task under way): what it raises still refuses."""
    applied = apply(world)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    [record_map] = world.kube.list_objects("ConfigMap", NAMESPACE)
    name = record_map["metadata"]["name"]
    world.kube.kubectl("-n", NAMESPACE, "patch", "configmap", name, "--type=merge",
                       "-p", '{"binaryData": {"record.json.gz": "bm90IGd6aXA="}}', check=True)
    world.kube.clear_requests()

    refused = apply(world)

    assert refused.returncode == 0, refused.stdout + refused.stderr
    assert refused.stdout.splitlines()[-1] == "skipped"
    refusal = refused.stdout.splitlines()[-2]
    assert refusal.startswith(f"Refusing to execute: configmap/{name} in namespace {NAMESPACE}: the apply record "
                              "exists but cannot be read")
    assert "refusing rather than guessing what was applied" in refusal
    touched = [r for r in world.kube.requests() if r["method"] in MUTATING and "/leases" not in r["path"]]
    assert touched == [], "nothing but the lock was written"


def test_an_hpa_from_a_manifest_file_is_stamped_right_after_it_is_created(world: World) -> None:
    """The plan's own HPAs carry the stamp in the manifest apply sends; a manifest file knows nothing of it, so
    the HPA it creates is stamped once the objects are read after the steps."""
    with_files(world, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)}, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)})
    world.kube.clear_requests()

    applied = apply(world)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    [record_map] = world.kube.list_objects("ConfigMap", NAMESPACE)
    assert stamp_of(world.hpa("web")) == stamp_of(world.deployment("web")) == record_map["metadata"]["name"]
    assert world.kube.kubectl_invocations(field_manager=STAMP_FIELD_MANAGER) == 2, "before the steps, and after"
