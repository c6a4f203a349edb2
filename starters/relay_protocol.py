"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn times out idle keep-alive connections only *between* requests, and any
byte resets that timer: a client that connects and sends nothing, or sends its
headers a byte at a time, holds a connection forever (and with enough of them,
every slot up to ``limit_concurrency``). Here each request gets a deadline to
finish its headers; the body has its own deadline in the app (`read_body`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeaderDeadlineProtocol(H11Protocol):
    header_timeout_seconds = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _waiting_for_headers(self) -> bool:
        # h11 leaves IDLE once a request line and all headers have been parsed.
        return self.conn.their_state is h11.IDLE

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._arm()  # the first bytes of a new request on a kept-alive connection start its clock
        super().data_received(data)
        if not self._waiting_for_headers():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests the keep-alive timeout applies; the next request arms a new deadline.
        if self._waiting_for_headers():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_with_header_deadline(seconds: float) -> type[H11Protocol]:
    """An h11 protocol class (for ``uvicorn.Config(http=...)``) that drops clients slower than ``seconds``."""
    return type("RelayH11Protocol", (_HeaderDeadlineProtocol,), {"header_timeout_seconds": seconds})
