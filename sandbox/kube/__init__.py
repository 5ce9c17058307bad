"""Sandbox Kubernetes API server that real kubectl drives (issue 3).

Start one in-process with :class:`SandboxServer` or from a shell with ``infra-sandbox``; see
``tests/fixtures/kube.py`` for the pytest fixture built on it.
"""

from .faults import FaultInjector, FaultRule
from .server import SandboxServer

__all__ = ["FaultInjector", "FaultRule", "SandboxServer"]
