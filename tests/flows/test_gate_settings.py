"""Which repository the gate asks: the triggering event's, else GH_OWNER/GH_REPO."""

import pytest

from core.gate import GateRequirement
from tasks.gate import settings_for


def test_the_event_repository_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_OWNER", "acme")
    monkeypatch.setenv("GH_REPO", "infra")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken-value")
    plain = settings_for(GateRequirement("apply", 7, "ops/plan.yaml"))
    routed = settings_for(GateRequirement("apply", 7, "ops/plan.yaml", repository="platform/clusters"))
    assert plain.full_name == "acme/infra"
    assert routed.full_name == "platform/clusters"
    assert routed.token == plain.token == "t0ken-value"
