"""The run's own settings, parsed once from the environment at the entry point (a CLI's `run`, a flow run's
task) and passed down: nothing below reads `os.environ` for them."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.conventions import Env
from core.errors import InputError
from core.k8s import decimal_integer, shown

DEFAULT_KUBECTL_TIMEOUT_S = 60.0
DEFAULT_MAX_PARALLEL_STEPS = 4


@dataclass(frozen=True)
class Settings:
    kubectl_binary: str = "kubectl"
    """`KUBECTL`: the kubectl binary."""
    kubectl_timeout_s: float = DEFAULT_KUBECTL_TIMEOUT_S
    """`INFRA_KUBECTL_TIMEOUT`: seconds before a kubectl call is killed (and retried when that is safe)."""
    max_parallel_steps: int = DEFAULT_MAX_PARALLEL_STEPS
    """`INFRA_MAX_PARALLEL_STEPS`: kubectl calls on different workloads at a time."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        """The settings in `env`; a value that is not one is bad input (InputError naming the variable)."""
        return cls(
            kubectl_binary=env.get(Env.KUBECTL) or "kubectl",
            kubectl_timeout_s=_seconds(env, Env.KUBECTL_TIMEOUT, DEFAULT_KUBECTL_TIMEOUT_S),
            max_parallel_steps=_count(env, Env.MAX_PARALLEL_STEPS, DEFAULT_MAX_PARALLEL_STEPS),
        )


def _seconds(env: Mapping[str, str], name: Env, default: float) -> float:
    text = env.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError("environment", name, f"{shown(text)} is not a positive number of seconds")
    return value


def _count(env: Mapping[str, str], name: Env, default: int) -> int:
    text = env.get(name)
    if text is None:
        return default
    value = decimal_integer(text.strip(), 1, 1000)
    if value is None:
        raise InputError("environment", name, f"{shown(text)} is not a whole number from 1 to 1000")
    return value
