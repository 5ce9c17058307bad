"""A CI-sized slice of bench/chaos.py: seeded faults, kills and concurrent triggers through the real CLI.

Each seed must end with the plan applied and then exactly undone, every write landed once, the records readable
and in agreement, the lock free and no traceback. `bench/chaos.py --seeds 200` runs the same trials at scale.
"""

import os
from collections.abc import Iterator

import pytest

from bench.chaos import Prefect, prefect_server, report, run_seed

CI_SEEDS = range(int(os.environ.get("INFRA_CHAOS_SEEDS", "10")))


@pytest.fixture(scope="module")
def chaos_prefect() -> Iterator[Prefect]:
    with prefect_server() as server:
        yield server


@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seeded_chaos_leaves_exact_state_and_free_lock(chaos_prefect: Prefect, seed: int) -> None:
    """One seed per test, so that a failing seed is named on its own."""
    trial = run_seed(seed, chaos_prefect)
    assert not trial.findings, report([trial])
