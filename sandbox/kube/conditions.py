"""Status conditions as the controllers write them: timestamps kept when nothing changed, so no-op syncs are
no-op writes."""

from __future__ import annotations

from typing import Any

from .store import now_iso


def set_condition(
    status: dict[str, Any], ctype: str, value: str, reason: str, message: str, touch: bool = False
) -> None:
    """Set a condition, keeping its timestamps when nothing about it changed (so no-op syncs don't write);
    ``touch`` refreshes ``lastUpdateTime`` anyway (progress was made)."""
    conds = status.get("conditions")
    if not isinstance(conds, list) or not all(isinstance(c, dict) for c in conds):
        conds = status["conditions"] = []
    now = now_iso()
    for c in conds:
        if c.get("type") == ctype:
            if touch or (c.get("status"), c.get("reason"), c.get("message")) != (value, reason, message):
                if c.get("status") != value:
                    c["lastTransitionTime"] = now
                c.update(status=value, reason=reason, message=message, lastUpdateTime=now)
            return
    conds.append(
        {
            "type": ctype,
            "status": value,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == ctype), None)
