"""The flows' `head_sha` parameter (the head a labeled event carried) reaches the gate."""

import inspect

from core.conventions import Flow


def test_head_sha_becomes_the_gates_expected_head() -> None:
    from flows.shared import execution

    pinned = execution(Flow.APPLY, "ops/plans/x/plan.yaml", 7, "acme/infra", False, "c0ffee1", 5)
    unpinned = execution(Flow.ROLLBACK, "ops/plans/x/plan.yaml", 7, None, False, None, 5)
    without_pr = execution(Flow.APPLY, "ops/plans/x/plan.yaml", None, None, False, "c0ffee1", 5)

    assert pinned.requirement is not None and pinned.requirement.expected_head_sha == "c0ffee1"
    assert pinned.requirement.plan_path == "ops/plans/x/plan.yaml" and pinned.requirement.flow == "apply"
    assert unpinned.requirement is not None and unpinned.requirement.expected_head_sha is None
    assert without_pr.requirement is None


def test_both_flows_take_head_sha() -> None:
    from flows.apply import infra_apply
    from flows.rollback import infra_rollback

    for flow in (infra_apply, infra_rollback):
        assert inspect.signature(flow.fn).parameters["head_sha"].default is None
