"""Did a write land? Answered from the live object, for a write whose answer was lost (a timeout, a dropped
connection): if it landed, the step is confirmed instead of sent again.

Pure: the live state is what core.state.state_of reads, the same form that apply captures and rollback checks.
Sending a write twice is not harmless: a second `scale --current-replicas` fails against the first one's
result, and a second `set resources` after someone else's change would overwrite it.
"""

from collections.abc import Mapping
from typing import Any

from core.plan import Action, ApplyHpa, ScaleWorkload, UpdateResources
from core.state import Objects, comparable, normalized_resources, state_of
from core.steps import Landing, hpa_manifest


def forward_landed(action: Action, live: Mapping[str, Any] | None,
                   manifest: Mapping[str, Any] | None = None) -> bool:
    """Whether the live object is as the forward step leaves it.

    `manifest` is the HPA manifest the step applied (read from the action's file); for an HPA given by bounds it
    is built from them. Only the fields the manifest sets are compared: the server fills in defaults.
    """
    if live is None:
        return False
    if isinstance(action, ScaleWorkload):
        return bool(live.get("replicas") == action.replicas)
    if isinstance(action, UpdateResources):
        return _resources_landed(action, live)
    applied = manifest if manifest is not None else _bounds_manifest(action)
    return applied is not None and _contains(live.get("spec", {}), applied.get("spec", {}))


def reverse_landed(action: Action, live: Mapping[str, Any] | None, before: Mapping[str, Any] | None) -> bool:
    """Whether the live object is back to the state recorded before apply (`before` None: it did not exist, as
    an HPA that the plan created)."""
    if before is None or live is None:
        return before is None and live is None
    return bool(comparable(action, live) == comparable(action, before))


def landed(landing: Landing, objects: Objects) -> bool:
    """Whether the live `objects` show the step's write as landed."""
    live = state_of(landing.action, objects)
    if landing.reverse:
        return reverse_landed(landing.action, live, landing.before)
    return forward_landed(landing.action, live)


def _resources_landed(action: UpdateResources, live: Mapping[str, Any]) -> bool:
    containers: Mapping[str, Any] = live.get("containers") or {}
    if not containers or live.get("missing_container"):
        return False
    wanted = normalized_resources({"requests": action.requests, "limits": action.limits})
    return all(_contains(normalized_resources(resources), wanted) for resources in containers.values())


def _bounds_manifest(action: ApplyHpa) -> dict[str, Any] | None:
    if action.bounds is None:
        return None
    return hpa_manifest(action.name, "", action.workload, action.bounds)


def _contains(live: Any, wanted: Any) -> bool:
    """Every field of `wanted` has the same value in `live` (lists element by element, same length)."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(key in live and _contains(live[key], value)
                                                 for key, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(_contains, live, wanted))
    return bool(live == wanted)
