"""The flow-run process a worker starts (`command` in prefect.yaml's work pools): Prefect's own engine, as
`python -m prefect.engine` runs it, after importing what every flow run needs with the garbage collector off and
frozen, as the CLI does (cli/process.py says why)."""

import importlib
import importlib.util
import runpy

from cli.process import long_lived_imports

PRELOADED = ("prefect.flow_engine", "prefect.task_engine", "github")
"""Prefect's flow and task engines, and PyGithub (the gate's client, which every flow but infra-scale uses)."""

if __name__ == "__main__":
    with long_lived_imports():
        for module in PRELOADED:
            importlib.import_module(module)
    engine = importlib.util.find_spec("prefect.engine")
    assert engine is not None and engine.origin is not None
    # The preloaded engines import prefect.engine; run_module would warn that it is imported already
    runpy.run_path(engine.origin, run_name="__main__")
