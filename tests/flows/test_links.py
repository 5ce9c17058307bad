"""The pull request's page, as the run summary links it, for github.com and GitHub Enterprise."""

import pytest

from core.gate import GateRequirement
from tasks.links import pull_request_url


@pytest.mark.parametrize(("api", "page"), [
    ("https://api.github.com", "https://github.com/acme/infra/pull/7"),
    ("https://ghe.example.com/api/v3", "https://ghe.example.com/acme/infra/pull/7"),
])
def test_the_pr_page_follows_the_api_host(monkeypatch: pytest.MonkeyPatch, api: str, page: str) -> None:
    monkeypatch.setenv("GH_OWNER", "acme")
    monkeypatch.setenv("GH_REPO", "infra")
    monkeypatch.setenv("GITHUB_API_URL", api)
    assert pull_request_url(GateRequirement(flow="apply", pr=7, plan_path="plan.yaml")) == page


def test_no_link_for_a_repository_this_worker_does_not_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_OWNER", "acme")
    monkeypatch.setenv("GH_REPO", "infra")
    monkeypatch.delenv("INFRA_REPOSITORIES", raising=False)
    requirement = GateRequirement(flow="apply", pr=7, plan_path="plan.yaml", repository="mallory/infra")
    assert pull_request_url(requirement) is None
