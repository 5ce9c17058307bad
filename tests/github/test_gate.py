"""Pure gate logic: evaluate_gate and recheck, no network."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.gate import (
    GateDecision,
    GateRequirement,
    PullRequestFacts,
    evaluate_gate,
    files_read_by,
    git_blob_sha,
    local_files_problem,
    recheck,
    repository_problem,
)
from core.plan import load_plan
from core.steps import apply_steps
from integrations.github import label_history, last_retarget, retargeted_after_label

PLAN = "ops/plans/infra-scale/prod/plan.yaml"
HEAD = "a" * 40
BLOB = "b" * 40
APPLY = GateRequirement("apply", 7, PLAN)
ROLLBACK = GateRequirement("rollback", 7, PLAN)


def good(**changes: object) -> PullRequestFacts:
    facts = PullRequestFacts(
        number=7, is_open=True, merged=False, draft=False, from_base_repo=True, head_repo="acme/infra",
        labels=("execute-plan", "rollback-plan"), head_sha=HEAD, label_actor="alice",
        label_added_at="2026-01-01T00:00:00+00:00", label_actor_role="admin", label_actor_permission="admin",
        plan_blob_sha=BLOB, approvals=(), label_actor_type="User", pushed_after_label=(), plan_changed=True,
        base_ref="main", allowed_bases=("main",))
    return replace(facts, **changes)  # type: ignore[arg-type]


def test_all_conditions_met_allows_and_pins_shas() -> None:
    decision = evaluate_gate(good(), APPLY)
    assert decision.allowed
    assert (decision.head_sha, decision.plan_blob_sha, decision.label_actor) == (HEAD, BLOB, "alice")
    assert not decision.reason.endswith(".")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"labels": ("rollback-plan",)}, "PR missing label 'execute-plan'"),
    ({"labels": None}, "PR missing label 'execute-plan'"),
    ({"is_open": False}, "PR #7 is closed"),
    ({"is_open": False, "merged": True}, "PR #7 is merged"),
    ({"is_open": None}, "PR #7 state is unknown"),
    ({"from_base_repo": False, "head_repo": "mallory/infra"}, "PR #7 is from a fork"),
    ({"from_base_repo": None, "head_repo": None}, "PR #7 is from a fork (its head repository was deleted)"),
    ({"label_actor": None}, "no 'labeled' event found for label 'execute-plan'"),
    ({"label_actor": "bob", "label_actor_role": "triage", "label_actor_permission": "read"},
     "label 'execute-plan' was added by 'bob' whose permission is 'triage' (needs write, maintain or admin)"),
    ({"label_actor": "rita", "label_actor_role": "read", "label_actor_permission": "read"},
     "label 'execute-plan' was added by 'rita' whose permission is 'read' (needs write, maintain or admin)"),
    ({"label_actor": "eve", "label_actor_role": None, "label_actor_permission": None},
     "label 'execute-plan' was added by 'eve' whose permission is 'none' (needs write, maintain or admin)"),
    ({"head_sha": None}, "PR #7 head SHA is unknown"),
    ({"draft": True}, "PR #7 is a draft"),
    ({"draft": None}, "PR #7 draft state is unknown"),
    ({"label_actor": "ci[bot]", "label_actor_type": "Bot"},
     "label 'execute-plan' was added by bot account 'ci[bot]', which is not a trusted bot (INFRA_TRUSTED_BOTS)"),
    ({"label_actor": "deploy-bot", "label_actor_type": "Bot"},
     "label 'execute-plan' was added by bot account 'deploy-bot', which is not a trusted bot (INFRA_TRUSTED_BOTS)"),
    ({"label_actor": "sneaky[bot]", "label_actor_type": "User"},
     "label 'execute-plan' was added by bot account 'sneaky[bot]', which is not a trusted bot (INFRA_TRUSTED_BOTS)"),
    ({"pushed_after_label": ("commit ccccccc",)},
     "PR #7 changed after label 'execute-plan' was added (commit ccccccc); add the label again to run the new head"),
    ({"pushed_after_label": None}, "could not tell whether PR #7 changed after label 'execute-plan' was added"),
    ({"plan_blob_sha": None}, f"plan file {PLAN} not found at head aaaaaaa"),
    ({"error": "GitHub settings missing: GH_OWNER"}, "GitHub settings missing: GH_OWNER"),
    ({"number": 8}, "facts are for PR #8, not PR #7"),
])
def test_refusals_have_exact_reasons(changes: dict[str, object], reason: str) -> None:
    decision = evaluate_gate(good(**changes), APPLY)
    assert not decision.allowed
    assert decision.reason == reason


def test_rollback_needs_its_own_label() -> None:
    decision = evaluate_gate(good(labels=("execute-plan",)), ROLLBACK)
    assert (decision.allowed, decision.reason) == (False, "PR missing label 'rollback-plan'")
    assert evaluate_gate(good(labels=("rollback-plan",)), ROLLBACK).allowed


@pytest.mark.parametrize("role", ["admin", "maintain", "write"])
def test_trigger_roles_allowed(role: str) -> None:
    assert evaluate_gate(good(label_actor_role=role, label_actor_permission="write"), APPLY).allowed


def test_custom_role_falls_back_to_its_base_permission() -> None:
    assert evaluate_gate(good(label_actor_role="deployer", label_actor_permission="write"), APPLY).allowed
    decision = evaluate_gate(good(label_actor_role="auditor", label_actor_permission="read"), APPLY)
    assert not decision.allowed and "'auditor'" in decision.reason


def test_nothing_known_fails_closed() -> None:
    decision = evaluate_gate(PullRequestFacts(number=7), APPLY)
    assert not decision.allowed
    assert decision.reason == "PR #7 state is unknown"


def test_unknown_flow_and_bad_plan_paths_refuse() -> None:
    assert evaluate_gate(good(), GateRequirement("destroy", 7, PLAN)).reason.startswith("unknown flow 'destroy'")
    for path in ("/etc/plan.yaml", "../x/plan.yaml", "ops/../../x.yaml", "", "a\\b.yaml", "ops/x-->y.yaml"):
        decision = evaluate_gate(good(), GateRequirement("apply", 7, path))
        assert not decision.allowed and "plan path" in decision.reason, path


def test_approval_required_on_head() -> None:
    needs = GateRequirement("apply", 7, PLAN, require_approval=True)
    assert evaluate_gate(good(approvals=()), needs).reason == "PR #7 has no approving review on head aaaaaaa"
    assert evaluate_gate(good(approvals=None), needs).reason == "PR #7 has no approving review on head aaaaaaa"
    allowed = evaluate_gate(good(approvals=("mona",)), needs)
    assert allowed.allowed and "approved by mona" in allowed.reason


def test_decision_message_for_callers() -> None:
    decision = evaluate_gate(good(is_open=False), APPLY)
    assert decision.message == "Refusing to execute: PR #7 is closed."


# ----------------------------------------------------------------------------- recheck
def test_recheck_unchanged_allows() -> None:
    first = evaluate_gate(good(), APPLY)
    again = recheck(first, good(), APPLY)
    assert again.allowed and (again.head_sha, again.plan_blob_sha) == (HEAD, BLOB)


def test_recheck_head_sha_changed() -> None:
    first = evaluate_gate(good(), APPLY)
    decision = recheck(first, good(head_sha="d" * 40), APPLY)
    assert (decision.allowed, decision.reason) == (False, "head SHA changed since the check (aaaaaaa -> ddddddd)")


def test_recheck_plan_file_changed() -> None:
    first = evaluate_gate(good(), APPLY)
    decision = recheck(first, good(plan_blob_sha="c" * 40), APPLY)
    assert (decision.allowed, decision.reason) == (False, f"plan file {PLAN} changed since the check")


def test_recheck_plan_file_deleted() -> None:
    first = evaluate_gate(good(), APPLY)
    assert recheck(first, good(plan_blob_sha=None), APPLY).reason == f"plan file {PLAN} changed since the check"


def test_recheck_label_removed() -> None:
    first = evaluate_gate(good(), APPLY)
    decision = recheck(first, good(labels=("rollback-plan",)), APPLY)
    assert (decision.allowed, decision.reason) == (False, "label 'execute-plan' was removed since the check")


def test_recheck_relabel_by_triage_refuses() -> None:
    first = evaluate_gate(good(), APPLY)
    decision = recheck(first, good(label_actor="tess", label_actor_role="triage"), APPLY)
    assert not decision.allowed and "'tess' whose permission is 'triage'" in decision.reason


def test_recheck_closed_meanwhile() -> None:
    first = evaluate_gate(good(), APPLY)
    assert recheck(first, good(is_open=False), APPLY).reason == "PR #7 is closed"


def test_recheck_of_refusal_stays_refused() -> None:
    first = evaluate_gate(good(is_open=False), APPLY)
    assert recheck(first, good(), APPLY) is first


def test_recheck_without_pinned_shas_refuses() -> None:
    fake = GateDecision(True, "forged", None, None)
    assert not recheck(fake, good(), APPLY).allowed


def test_recheck_error_refuses() -> None:
    first = evaluate_gate(good(), APPLY)
    decision = recheck(first, PullRequestFacts(number=7, error="GitHub answered 502 while reading PR #7"), APPLY)
    assert (decision.allowed, decision.reason) == (False, "GitHub answered 502 while reading PR #7")


def test_expected_head_sha_from_the_label_event() -> None:
    pinned = GateRequirement("apply", 7, PLAN, expected_head_sha=HEAD)
    assert evaluate_gate(good(), pinned).allowed
    decision = evaluate_gate(good(head_sha="e" * 40), pinned)
    assert decision.reason == ("head SHA changed since the label was added (aaaaaaa -> eeeeeee); "
                               "add the label again to run the new head")


# ----------------------------------------------------------------------------- configuration
def test_a_trusted_bot_label_counts() -> None:
    facts = good(label_actor="Renovate[bot]", label_actor_type="Bot")
    assert evaluate_gate(facts, APPLY, trusted_bots=("renovate[bot]",)).allowed
    assert not evaluate_gate(facts, APPLY, trusted_bots=("dependabot[bot]",)).allowed
    first = evaluate_gate(facts, APPLY, trusted_bots=("renovate[bot]",))
    assert not recheck(first, facts, APPLY).allowed, "the recheck applies the same configuration"


@pytest.mark.parametrize(("requested", "problem"), [
    (None, None),
    ("acme/infra", None),
    ("ACME/Infra", None),
    ("platform/clusters", None),
    ("mallory/infra", "repository mallory/infra is not served by this worker (serves: acme/infra, "
                      "platform/clusters; set GH_OWNER/GH_REPO or INFRA_REPOSITORIES)"),
    ("acme/infra\n", "repository 'acme/infra\\n' is not owner/name"),
    ("acme/infra/x", "repository 'acme/infra/x' is not owner/name"),
])
def test_only_configured_repositories_are_served(requested: str | None, problem: str | None) -> None:
    assert repository_problem(requested, "acme/infra", ["platform/clusters"]) == problem


def test_no_configured_repository_serves_no_event_repository() -> None:
    assert repository_problem("acme/infra", None, ()) == (
        "repository acme/infra is not served by this worker (serves: none configured; set GH_OWNER/GH_REPO or "
        "INFRA_REPOSITORIES)")


# ----------------------------------------------------------------------------- files the run reads
MANIFEST = "ops/plans/infra-scale/prod/hpa.yaml"
WITH_MANIFEST = GateRequirement("apply", 7, PLAN, read_paths=(MANIFEST,))
PLAN_BYTES, MANIFEST_BYTES = b"namespace: shop\n", b"kind: HorizontalPodAutoscaler\n"


def pinned(**files: str | None) -> PullRequestFacts:
    return good(plan_blob_sha=git_blob_sha(PLAN_BYTES), file_blob_shas={MANIFEST: git_blob_sha(MANIFEST_BYTES),
                                                                          **files})


def test_git_blob_sha_is_gits() -> None:
    assert git_blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_every_file_read_is_pinned_and_compared() -> None:
    decision = evaluate_gate(pinned(), WITH_MANIFEST)
    assert decision.allowed and decision.file_blob_shas == {MANIFEST: git_blob_sha(MANIFEST_BYTES)}
    same = {PLAN: PLAN_BYTES, MANIFEST: MANIFEST_BYTES}
    assert local_files_problem(decision, WITH_MANIFEST, same) is None
    edited = local_files_problem(decision, WITH_MANIFEST, {**same, MANIFEST: b"kind: Secret\n"})
    assert edited is not None and edited.startswith(f"{MANIFEST} here (blob ") and "PR #7 carries at aaaaaaa" in edited
    plan_edited = local_files_problem(decision, WITH_MANIFEST, {**same, PLAN: b"namespace: prod\n"})
    assert plan_edited is not None and plan_edited.startswith("the plan file here (blob ")
    gone = local_files_problem(decision, WITH_MANIFEST, {**same, MANIFEST: None})
    assert gone == f"{MANIFEST} does not exist here (PR #7 carries at aaaaaaa blob {git_blob_sha(MANIFEST_BYTES)[:7]})"


def test_a_file_missing_from_the_pr_refuses_naming_it() -> None:
    decision = evaluate_gate(pinned(**{MANIFEST: None}), WITH_MANIFEST)
    assert decision.reason == f"file {MANIFEST} (read by the plan) not found in PR #7 at head aaaaaaa"
    unpinned = GateDecision(True, "forged", HEAD, git_blob_sha(PLAN_BYTES))
    assert local_files_problem(unpinned, WITH_MANIFEST, {PLAN: PLAN_BYTES, MANIFEST: MANIFEST_BYTES}) == (
        f"{MANIFEST} is not in the files PR #7 carries at aaaaaaa")


def test_a_read_path_outside_the_repository_refuses() -> None:
    decision = evaluate_gate(pinned(), GateRequirement("apply", 7, PLAN, read_paths=("../secret.yaml",)))
    assert not decision.allowed and "'../secret.yaml'" in decision.reason


def test_recheck_compares_every_pinned_file() -> None:
    first = evaluate_gate(pinned(), WITH_MANIFEST)
    assert recheck(first, pinned(), WITH_MANIFEST).allowed
    assert recheck(first, pinned(**{MANIFEST: "c" * 40}), WITH_MANIFEST).reason == (
        f"file {MANIFEST} changed since the check")
    gone = recheck(first, pinned(**{MANIFEST: None}), WITH_MANIFEST)
    assert gone.reason == f"file {MANIFEST} changed since the check"


# ----------------------------------------------------------------------------- the timeline
def labeled(at: str, login: str = "alice", user_type: str = "User") -> dict[str, object]:
    return {"event": "labeled", "label": {"name": "execute-plan"}, "created_at": at,
            "actor": {"login": login, "type": user_type}}


def committed(sha: str, date: str) -> dict[str, object]:
    return {"event": "committed", "sha": sha, "committer": {"date": date}}


def test_the_newest_label_and_the_pushes_after_it() -> None:
    timeline = [committed("1" * 40, "2026-01-01T10:00:00Z"), labeled("2026-01-01T11:00:00Z", "walt"),
                committed("2" * 40, "2026-01-01T12:00:00Z"),
                {"event": "head_ref_force_pushed", "commit_id": "3" * 40, "created_at": "2026-01-01T12:30:00Z"}]
    history = label_history(timeline, "execute-plan")
    assert (history.actor, history.actor_type) == ("walt", "User")
    assert history.pushed_after == ("commit 2222222", "force-push to 3333333")
    relabeled = label_history([*timeline, labeled("2026-01-01T13:00:00Z", "ci[bot]", "Bot")], "execute-plan")
    assert (relabeled.actor, relabeled.actor_type, relabeled.pushed_after) == ("ci[bot]", "Bot", ())


def test_a_commit_dated_after_the_label_counts_wherever_it_is_listed() -> None:
    timeline = [committed("4" * 40, "2026-01-01T12:00:00Z"), labeled("2026-01-01T11:00:00Z")]
    assert label_history(timeline, "execute-plan").pushed_after == ("commit 4444444",)


def test_times_without_a_zone_are_utc() -> None:
    timeline = [committed("5" * 40, "2026-01-01T12:00:00"), labeled("2026-01-01T11:00:00Z")]
    assert label_history(timeline, "execute-plan").pushed_after == ("commit 5555555",)


def test_a_retarget_after_the_label_counts_as_a_push() -> None:
    retarget = {"event": "base_ref_changed", "created_at": "2026-01-01T12:00:00Z", "actor": {"login": "walt"}}
    assert not retargeted_after_label([retarget, labeled("2026-01-01T13:00:00Z")], "execute-plan"), \
        "labeled after the retarget: the label was given for the new base"
    assert retargeted_after_label([labeled("2026-01-01T11:00:00Z"), retarget], "execute-plan")
    assert retargeted_after_label([retarget], "execute-plan"), "no label listed: fail closed"
    assert not retargeted_after_label([labeled("2026-01-01T11:00:00Z")], "execute-plan")
    assert last_retarget([retarget, labeled("2026-01-01T13:00:00Z")]) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert last_retarget([labeled("2026-01-01T13:00:00Z")]) is None


def test_no_labeled_event_means_no_actor() -> None:
    history = label_history([{"event": "labeled", "label": {"name": "other"}, "actor": {"login": "x"}}],
                            "execute-plan")
    assert history.actor is None


def test_files_read_by_a_plan_are_its_manifests_and_hint_files(tmp_path: Path) -> None:
    directory = tmp_path / "ops" / "plans" / "prod"
    (directory / "sub").mkdir(parents=True)
    hpa = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
           "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 3}\n")
    for name in ("hpa.yaml", "sub/hint.yaml", "applied.yaml"):
        (directory / name).write_text(hpa)
    (directory / "plan.yaml").write_text(
        "namespace: shop\nactions:\n  - {type: apply_hpa, name: web, manifest: ./hpa.yaml}\n"
        "  - {type: scale_workload, name: web, replicas: 2}\n"
        "rollbackHints: [sub/hint.yaml, hpa.yaml, kubectl apply -f applied.yaml, kubectl delete hpa web]\n")
    plan = load_plan(directory / "plan.yaml")
    read = files_read_by(plan, "ops/plans/prod/plan.yaml")
    assert sorted(read) == ["ops/plans/prod/applied.yaml", "ops/plans/prod/hpa.yaml", "ops/plans/prod/plan.yaml",
                            "ops/plans/prod/sub/hint.yaml"]
    assert read.pop("ops/plans/prod/plan.yaml") == (directory / "plan.yaml").read_bytes()
    assert all(data == hpa.encode() for data in read.values())  # the bytes read once, as parsed


def test_the_files_the_gate_compares_are_the_bytes_that_were_parsed(tmp_path: Path) -> None:
    """Issue 25: read once, hash those bytes. A file changed on disk after the parse changes nothing the gate sees."""
    hpa = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
           "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 3}\n")
    (tmp_path / "hpa.yaml").write_text(hpa)
    plan_text = "namespace: shop\nactions:\n  - {type: apply_hpa, name: web, manifest: hpa.yaml}\n"
    (tmp_path / "plan.yaml").write_text(plan_text)
    plan = load_plan(tmp_path / "plan.yaml")
    (tmp_path / "plan.yaml").write_text(plan_text + "  - {type: scale_workload, name: web, replicas: 9}\n")
    (tmp_path / "hpa.yaml").write_text(hpa.replace("maxReplicas: 3", "maxReplicas: 50000"))
    assert files_read_by(plan, "p/plan.yaml") == {"p/plan.yaml": plan_text.encode(), "p/hpa.yaml": hpa.encode()}
    assert '"maxReplicas": 3' in (apply_steps(plan)[0].stdin or "")  # kubectl gets the validated object, not the file


def test_a_plan_its_pr_does_not_change_is_refused() -> None:
    """Issue 25: any plan present at the PR's head could run under its label."""
    decision = evaluate_gate(good(plan_changed=False), APPLY)
    assert decision.reason == (f"plan file {PLAN} is not among the files PR #7 changes: a label runs only its own "
                               "PR's plan")
    assert not evaluate_gate(good(plan_changed=None), APPLY).allowed


def test_a_pr_into_another_branch_is_refused_unless_configured() -> None:
    decision = evaluate_gate(good(base_ref="release-x"), APPLY)
    assert decision.reason == ("PR #7 merges into 'release-x', not a branch this worker executes for ('main'; "
                               "INFRA_BASE_BRANCHES adds others)")
    assert evaluate_gate(good(base_ref="release-x", allowed_bases=("main", "release-x")), APPLY).allowed
    assert not evaluate_gate(good(base_ref=None), APPLY).allowed


def test_a_retarget_after_the_check_refuses_like_a_push() -> None:
    first = evaluate_gate(good(), APPLY)
    again = recheck(first, good(base_ref="release-x", allowed_bases=("main", "release-x")), APPLY)
    assert again.reason == ("the PR's base branch changed since the check ('main' -> 'release-x'); add the label "
                            "again to run the new head")
