"""Shared pytest wiring: each fixture module owns one real part (sandbox API server, GitHub test server, Prefect).

pytest reads `pytest_plugins` only here, in the root conftest. The fixture modules import Prefect and start their
servers inside the fixtures, never at import, so a suite that uses none of them (tests/unit) needs no Prefect:
tests/test_unit_suite.py runs it with Prefect made unimportable."""

import os
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.github",
    "tests.fixtures.prefect",
    "tests.fixtures.prefect_server",
]


@pytest.fixture(autouse=True, scope="session")
def record_key_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Records are signed with a per-user key when none is configured (integrations.record_key): the tests' key
    lives in a temporary config directory, never in the real home."""
    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before
