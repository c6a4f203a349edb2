"""A uvicorn server run as a task of the current event loop: bind first, start, stop bounded.

The relay and the codec endpoint both serve this way (``zerotouch up``, tests, foreground).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

log = logging.getLogger("zerotouch")

STARTUP_TIMEOUT_SECONDS = 10.0


def bind(host: str, port: int, what: str) -> socket.socket:
    """A listening socket bound now, so a busy port fails here with a clear OSError
    (uvicorn would `sys.exit`) and port 0 yields a known port before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"{what} cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Embedded, the host process owns SIGINT/SIGTERM; uvicorn must not take them over.
        yield


class BackgroundServer:
    """``await start()``, ``port``/``url``, ``await stop()``; ``embedded=False`` lets uvicorn handle signals."""

    def __init__(self, config: uvicorn.Config, *, what: str, host: str, port: int, tls: bool,
                 grace_seconds: float, embedded: bool = True) -> None:
        self._server = (_EmbeddedServer if embedded else uvicorn.Server)(config)
        self._what, self._host, self._requested_port, self._tls = what, host, port, tls
        self._grace_seconds = grace_seconds
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when port 0 was asked for)."""
        if self._socket is None:
            raise RuntimeError(f"{self._what} not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        """Listen and return once connections are accepted; raises if serving could not start."""
        if self._task is not None:
            raise RuntimeError(f"{self._what} already started")
        self._socket = bind(self._host, self._requested_port, self._what)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name=f"zerotouch-{self._what}")
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                while not self._server.started:
                    if self._task.done():
                        self._task.result()  # raises what went wrong (e.g. a bad TLS file)
                        raise RuntimeError(f"{self._what} stopped while starting")
                    await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise

    async def wait(self) -> None:
        """Until the server ends by itself (uvicorn's own signal handling when not embedded)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), and release the port."""
        task, self._task = self._task, None
        if task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=self._grace_seconds)
            except TimeoutError:
                self._server.force_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            except (Exception, SystemExit):
                # A server that failed to start has already reported it from start().
                log.debug("%s task ended with an error", self._what, exc_info=True)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
