"""The one place the bridge relies on a uvicorn internal: a deadline for each request head.

uvicorn arms its keep-alive timer only after a response and cancels it on any byte received, so a client that
connects and stays silent, or trickles its headers, would otherwise hold a connection forever. None of uvicorn's
public settings bounds the time to a complete request head (``timeout_keep_alive`` is cancelled by any byte,
``h11_max_incomplete_event_size`` bounds its size, ``limit_concurrency`` the count), and the ASGI app sees a
request only once its head is complete. So this module subclasses uvicorn's h11 protocol, relying on its hooks
``connection_made``, ``on_response_complete`` and ``connection_lost`` and its attributes ``loop``, ``transport``
and ``conn`` (the ``h11.Connection``). tests/deploy/test_webhook_uvicorn_adapter.py fails, naming the missing
piece, when a uvicorn release changes any of them.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection with no complete request head ``head_timeout_s`` after it
    opened or after its last response."""

    head_timeout_s: float
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_deadline_passed)

    def _head_deadline_passed(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # still no complete request head
            self.transport.close()


def head_deadline_protocol(head_timeout_s: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with this deadline for every request head."""
    return type("BridgeHTTPProtocol", (HeadDeadlineProtocol,), {"head_timeout_s": head_timeout_s})
