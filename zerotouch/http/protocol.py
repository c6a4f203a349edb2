"""uvicorn's HTTP/1.1 protocol (httptools) with a deadline for request headers.

uvicorn times out idle keep-alive connections only *between* requests, and any
byte resets that timer: a client that connects and sends nothing, or sends its
headers a byte at a time, holds a connection forever (and with enough of them,
every slot up to ``limit_concurrency``). Here each request gets a deadline to
finish its headers; the body has its own deadline in the app (`read_body`).

The parser is httptools (C) rather than h11 (pure Python): h11 took over 40% of the
relay's CPU per webhook (BENCHMARKS.md, scenario 1).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_seconds = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_for_headers = True  # a new connection owes its first request's headers

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        # The first byte of a request (also on a kept-alive connection) starts its clock;
        # between requests only the keep-alive timeout applies.
        self._waiting_for_headers = True
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._waiting_for_headers = False
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_with_header_deadline(seconds: float) -> type[HttpToolsProtocol]:
    """A protocol class (for ``uvicorn.Config(http=...)``) that drops clients slower than ``seconds``."""
    return type("RelayHttpToolsProtocol", (_HeaderDeadlineProtocol,), {"header_timeout_seconds": seconds})
