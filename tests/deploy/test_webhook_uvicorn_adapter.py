"""The uvicorn internals deployments/webhook/uvicorn_adapter.py relies on for its request-head deadline: when a
uvicorn release moves or renames any of them, this fails naming the piece, before the slow-client protection
silently stops working."""

from __future__ import annotations

import inspect

import h11
import uvicorn

from deployments.webhook.uvicorn_adapter import HeadDeadlineProtocol, head_deadline_protocol

CHANGED = f"uvicorn {uvicorn.__version__} changed H11Protocol"


def test_uvicorns_h11_protocol_still_has_the_hooks_and_attributes_the_head_deadline_uses() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for hook, parameters in (("connection_made", ["self", "transport"]), ("on_response_complete", ["self"]),
                             ("connection_lost", ["self", "exc"])):  # fmt: skip
        method = getattr(H11Protocol, hook, None)
        assert callable(method), f"{CHANGED}: no {hook}()"
        assert list(inspect.signature(method).parameters) == parameters, f"{CHANGED}.{hook}'s parameters"
    init = inspect.getsource(H11Protocol.__init__)
    assert "self.loop = " in init, f"{CHANGED}: __init__ no longer sets self.loop"
    assert "self.conn = h11.Connection(" in init, f"{CHANGED}: __init__ no longer sets self.conn (h11)"
    assert "self.transport = transport" in inspect.getsource(H11Protocol.connection_made), (
        f"{CHANGED}: connection_made no longer sets self.transport"
    )
    assert hasattr(h11, "IDLE") and hasattr(h11.Connection, "their_state"), "h11 changed its connection states"
    assert issubclass(head_deadline_protocol(1.0), HeadDeadlineProtocol)
    assert issubclass(HeadDeadlineProtocol, H11Protocol)
