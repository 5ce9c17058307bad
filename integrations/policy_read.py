"""The live read that the policy checks ride on: the plan's workloads and HPAs and the namespace's policy objects
(core.policy.POLICY_RESOURCES) in one `kubectl get a,b,... -o json`."""

import json
import re
from collections.abc import Sequence
from typing import Any

from core.policy import POLICY_RESOURCES, unread_item
from integrations.kubectl import Kubectl, KubectlError, checked, run

_FORBIDDEN = re.compile(r"^Error from server \(Forbidden\): (?P<resource>[a-z.]+) is forbidden: ")


def _forbidden_policy(stderr: str) -> list[str] | None:
    """The policy resources kubectl was Forbidden to list, when those are its only errors; else None."""
    errors = [line for line in stderr.splitlines() if line.startswith(("Error", "error"))]
    found = [match["resource"].split(".")[0] for line in errors if (match := _FORBIDDEN.match(line))]
    if not found or len(found) != len(errors) or any(name not in POLICY_RESOURCES for name in found):
        return None
    return found


def get_with_policy(kubectl: Kubectl, namespace: str, resources: Sequence[str]) -> list[dict[str, Any]]:
    """Every object of `resources` and of the policy resources, in one call. A Role from before the policy
    checks may not list the policy objects: kubectl then prints the rest and a Forbidden line for each, and
    the read returns what it got with an item saying what it could not read (a finding, never a silent pass)."""
    wanted = [*resources, *POLICY_RESOURCES]
    result = run(kubectl, namespace, ["get", ",".join(wanted), "-o", "json"])
    unread = None if result.ok else _forbidden_policy(result.stderr)
    if unread is None:
        checked(result)
    try:
        document = json.loads(result.stdout) if result.stdout.strip() else {"items": []}
    except json.JSONDecodeError:
        raise KubectlError(f"kubectl get {','.join(wanted)} did not print JSON", transient=False) from None
    items = document.get("items", [document]) if isinstance(document, dict) else []
    return [item for item in items if isinstance(item, dict)] + ([unread_item(unread)] if unread else [])
