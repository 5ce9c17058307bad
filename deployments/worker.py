"""The deployments' pull step: change into the worker's checkout of this repository, or fail naming the fix.

Prefect's own `set_working_directory` with `{{ $INFRA_ORCHESTRATOR_DIR }}` drops the argument when the variable is
unset and reports the step as successful; the run then crashes later with a FileNotFoundError in a temporary
directory that names nothing. This step checks first.
"""

import os
from pathlib import Path

from core.conventions import Env

CHECKOUT_VARIABLE = Env.CHECKOUT
CHECKOUT_MARKERS = ("prefect.yaml", "flows/apply.py", "flows/rollback.py", "flows/scale.py")
"""What a checkout of this repository holds: the deployments' entrypoints are relative to it."""


class CheckoutMissing(RuntimeError):
    """The worker has no usable checkout; the message says what to set."""


def use_checkout(directory: str | None = None) -> dict[str, str]:
    """`cd` into `directory` (the rendered `{{ $INFRA_ORCHESTRATOR_DIR }}`) after checking it is a checkout.

    Returns `{"directory": <absolute path>}` as Prefect's `set_working_directory` does, for later steps."""
    fix = (f"set {CHECKOUT_VARIABLE} in the worker's environment to its checkout of infra-orchestrator at the "
           "deployed revision (the directory holding prefect.yaml and flows/), e.g. "
           f"{CHECKOUT_VARIABLE}=/srv/infra-orchestrator, then restart the worker")
    if not directory:
        raise CheckoutMissing(f"{CHECKOUT_VARIABLE} is not set on this worker: {fix}")
    path = Path(directory).expanduser().resolve()
    if not path.is_dir():
        raise CheckoutMissing(f"{CHECKOUT_VARIABLE}={directory} is not a directory on this worker: {fix}")
    missing = [marker for marker in CHECKOUT_MARKERS if not (path / marker).is_file()]
    if missing:
        raise CheckoutMissing(f"{CHECKOUT_VARIABLE}={directory} is not a checkout of infra-orchestrator "
                              f"(no {', '.join(missing)}): {fix}")
    os.chdir(path)
    return {"directory": str(path)}
