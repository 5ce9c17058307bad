"""The flow-run process a worker starts (`command` in prefect.yaml's work pools): Prefect's own engine, as
`python -m prefect.engine` runs it.

Beside the event-woken worker, the engine runs in a child of the worker's fork server
(`deployments/fork_server.py`), which has made the imports already: this process hands the run over, forwards
signals to it and ends as it ended. Otherwise (no fork server: `--type process`, INFRA_FAST_START=0, not yet
ready, or it refused) this process imports what every flow run needs with the garbage collector off and frozen,
as the CLI does (integrations/process.py says why), and runs the engine itself. Only the standard library is imported
before that choice."""

import os
import sys

PRELOADED = ("prefect.engine", "prefect.flow_engine", "prefect.task_engine", "github")
"""Prefect's engines, and PyGithub (the gate's client, which every flow but infra-scale uses)."""


def run_engine() -> None:
    """Prefect's engine module itself, as `-m` would run it (run_module would warn that it is imported)."""
    import runpy

    runpy.run_path(str(sys.modules["prefect.engine"].__file__), run_name="__main__")


def main() -> None:
    from deployments import fork_server

    path = os.environ.get(fork_server.SOCKET_VARIABLE)
    code = fork_server.run_forked(path) if path else None
    if code is not None:
        fork_server.end_as(code)
    import importlib

    from integrations.process import long_lived_imports

    with long_lived_imports():
        for module in PRELOADED:
            importlib.import_module(module)
    run_engine()


if __name__ == "__main__":
    main()
