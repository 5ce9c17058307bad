"""Which cluster a plan changes: its `context:`, or the kubeconfig's current context (as kubectl picks it).

The worker's own configuration is read here (`KUBECONFIG`, a list of files as kubectl takes it, else
~/.kube/config); kubectl uses the first `current-context` it finds in that list, and so does this.
"""

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from core.conventions import Env

IN_CLUSTER = "in-cluster"
"""The cluster's name when no kubeconfig names a current context (kubectl then uses the pod's service account)."""


def kubeconfig_files() -> list[Path]:
    listed = os.environ.get(Env.KUBECONFIG, "")
    if listed:
        return [Path(item) for item in listed.split(os.pathsep) if item]
    return [Path.home() / ".kube" / "config"]


def current_context() -> str | None:
    """The kubeconfig's current context, None when none is set or no kubeconfig can be read."""
    for path in kubeconfig_files():
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        context = config.get("current-context") if isinstance(config, dict) else None
        if isinstance(context, str) and context:
            return context
    return None


def allowed_contexts(env: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The contexts a plan may name: `INFRA_CONTEXTS` (comma-separated), by default the current context only."""
    listed = tuple(name.strip() for name in env.get(Env.CONTEXTS, "").split(",") if name.strip())
    if listed:
        return listed
    current = current_context()
    return (current,) if current else ()


def cluster_of(context: str | None) -> str:
    """The context a plan with `context:` (None: none given) changes."""
    return context or current_context() or IN_CLUSTER
