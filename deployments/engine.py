"""The flow-run process a worker starts (`command` in prefect.yaml's work pools): Prefect's own engine, as
`python -m prefect.engine` runs it, after importing what every flow run needs with the garbage collector off and
frozen, as the CLI does (integrations/process.py says why)."""

import importlib
import runpy
import sys

from integrations.process import long_lived_imports

PRELOADED = ("prefect.engine", "prefect.flow_engine", "prefect.task_engine", "github")
"""Prefect's engines, and PyGithub (the gate's client, which every flow but infra-scale uses)."""

if __name__ == "__main__":
    with long_lived_imports():
        for module in PRELOADED:
            importlib.import_module(module)
    # The file itself, as `-m` would run it: run_module would warn that the module is imported already
    runpy.run_path(str(sys.modules["prefect.engine"].__file__), run_name="__main__")
