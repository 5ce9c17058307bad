"""A process that runs a flow (the CLI's execute path, a worker's flow-run process) imports Prefect with the cyclic
garbage collector off, then freezes what the imports made (integrations/process.py says why)."""

import gc
import importlib
import sys

from integrations.process import long_lived_imports


def test_objects_made_by_the_imports_are_frozen_and_the_collector_runs_again_after() -> None:
    sys.modules.pop("json.tool", None)  # a module not imported yet here: its objects are made inside the block
    gc.unfreeze()
    collections = gc.get_stats()[2]["collections"]
    try:
        with long_lived_imports():
            assert not gc.isenabled()
            module = importlib.import_module("json.tool")
        assert gc.isenabled()
        assert gc.get_stats()[2]["collections"] == collections, "a full collection ran during the imports"
        assert not any(tracked is module.main for tracked in gc.get_objects()), "no collection walks it again"
    finally:
        gc.unfreeze()


def test_a_collector_someone_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        with long_lived_imports():
            pass
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
