"""Slow and idle clients cannot hold the web server's connections for good.

uvicorn times out an idle keep-alive connection, but nothing else: a client that connects and
sends nothing, trickles its request's headers a byte at a time, or stalls half-way through a
body keeps its connection (and a file descriptor) as long as it likes. This protocol is
uvicorn's own httptools protocol with two deadlines added:

- the request's headers must be complete within ``HEADER_SECONDS`` of the connection (or, on
  a kept-alive connection, of the request's first byte), else 408 and the connection closes;
- a body must keep arriving: no more than ``BODY_IDLE_SECONDS`` between two pieces of it,
  else the connection closes (the app sees a disconnect, nothing is half-processed).

Each connection costs one timer; serving requests on the event loop is untouched, so Slack's
acks do not wait on any of this (bench/bench_edge.py measures it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_SECONDS = 10.0
BODY_IDLE_SECONDS = 30.0
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 22\r\n"
    b"connection: close\r\n\r\nrequest header timeout"
)


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a body idle timeout."""

    header_seconds = HEADER_SECONDS
    body_idle_seconds = BODY_IDLE_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_body = False

    def _arm(self, seconds: float, *, body: bool) -> None:
        self._disarm()
        self._in_body = body
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if not self._in_body:
            self.transport.write(_TIMED_OUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_seconds, body=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None or self._in_body:  # a kept-alive connection's next request
            self._arm(self.header_seconds, body=False)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_idle_seconds, body=True)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_idle_seconds, body=True)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
