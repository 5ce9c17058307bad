"""Pure gate logic: evaluate_gate and recheck, no network."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.gate import GateDecision, GateRequirement, PullRequestFacts, evaluate_gate, recheck

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
        plan_blob_sha=BLOB, approvals=())
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
    assert decision.reason == "head SHA changed since the label was added (aaaaaaa -> eeeeeee)"
