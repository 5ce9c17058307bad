"""Which repository the gate asks: the triggering event's when this worker serves it, else GH_OWNER/GH_REPO.
An event naming a repository the worker was not configured for is refused before any GitHub read."""

import pytest

from core.gate import GateRequirement
from integrations.github import GitHubError
from tasks.links import settings_for


def test_an_event_may_name_only_a_repository_the_worker_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_OWNER", "acme")
    monkeypatch.setenv("GH_REPO", "infra")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken-value")
    monkeypatch.setenv("INFRA_REPOSITORIES", "platform/clusters")
    plain = settings_for(GateRequirement("apply", 7, "ops/plan.yaml"))
    routed = settings_for(GateRequirement("apply", 7, "ops/plan.yaml", repository="platform/clusters"))
    assert plain.full_name == "acme/infra"
    assert routed.full_name == "platform/clusters"
    assert routed.token == plain.token == "t0ken-value"
    with pytest.raises(GitHubError, match="repository attacker/infra is not served by this worker"):
        settings_for(GateRequirement("apply", 7, "ops/plan.yaml", repository="attacker/infra"))
