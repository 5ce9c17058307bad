"""Shared pytest wiring: each fixture module owns one real part (sandbox API server, GitHub test server, Prefect)."""

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.github",
    "tests.fixtures.prefect",
    "tests.fixtures.prefect_server",
]

