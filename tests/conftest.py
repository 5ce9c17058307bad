"""Shared pytest wiring: each fixture module owns one real part (sandbox API server, GitHub test server, Prefect)."""

import pytest

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.github",
    "tests.fixtures.prefect",
    "tests.fixtures.prefect_server",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`), the distribution tests share one stack (PostgreSQL, a Prefect
    server, the deployments): keep them on one worker so that stack starts once. Everything else spreads."""
    for item in items:
        if item.path.parent.name == "deploy":
            item.add_marker(pytest.mark.xdist_group("distribution"))
