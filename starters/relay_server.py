"""Serving the relay with uvicorn inside an already running event loop.

`serve_relay` runs in the foreground (``zerotouch relay``); `RelayServer` starts it
beside other work (``zerotouch up``, tests) and stops it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG

from starters.relay import create_app
from starters.relay_config import RelayConfig
from starters.relay_protocol import protocol_with_header_deadline
from zerotouch.telemetry import Telemetry

log = logging.getLogger("zerotouch.relay")

STARTUP_TIMEOUT_SECONDS = 10.0


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket bound now, so a busy port fails here with a clear OSError
    (uvicorn would `sys.exit`) and port 0 yields a known port before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"relay cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def _uvicorn_config(config: RelayConfig, client: Client, *, log_config: dict[str, Any] | None,
                    access_log: bool, telemetry: Telemetry | None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(client=client, config=config, telemetry=telemetry),
        host=config.host,
        port=config.port,
        ssl_certfile=config.tls_certfile,
        ssl_keyfile=config.tls_keyfile,
        # Idle keep-alive connections are dropped, slow headers too (the protocol), and the
        # app bounds the body read: no phase of a request can stall a connection forever.
        timeout_keep_alive=max(1, round(config.request_timeout_seconds)),
        http=protocol_with_header_deadline(config.request_timeout_seconds),
        # In-flight deliveries may finish on shutdown, so Alertmanager does not see a reset.
        timeout_graceful_shutdown=max(1, round(config.request_timeout_seconds + config.temporal_timeout_seconds)),
        limit_concurrency=config.max_concurrent_requests,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        log_config=log_config,
        access_log=access_log,
    )


def _url(config: RelayConfig, port: int) -> str:
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{'https' if config.tls else 'http'}://{host}:{port}"


async def serve_relay(config: RelayConfig, client: Client, telemetry: Telemetry | None = None) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handling) or cancellation."""
    uv_config = _uvicorn_config(config, client, log_config=LOGGING_CONFIG, access_log=True, telemetry=telemetry)
    sock = _bind(config.host, config.port)
    try:
        log.warning("relay listening on %s/alertmanager", _url(config, sock.getsockname()[1]))
        await uvicorn.Server(uv_config).serve(sockets=[sock])
    finally:
        sock.close()


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Embedded, the host process owns SIGINT/SIGTERM; uvicorn must not take them over.
        yield


class RelayServer:
    """The relay started in the current event loop: ``await start()``, ``port``, ``await stop()``."""

    def __init__(self, config: RelayConfig, client: Client, *, access_log: bool = False,
                 telemetry: Telemetry | None = None) -> None:
        self._config = config
        self._server = _EmbeddedServer(
            _uvicorn_config(config, client, log_config=None, access_log=access_log, telemetry=telemetry)
        )
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when the config asked for port 0)."""
        if self._socket is None:
            raise RuntimeError("relay not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return _url(self._config, self.port)

    async def start(self) -> None:
        """Listen and return once connections are accepted; raises if serving could not start."""
        if self._task is not None:
            raise RuntimeError("relay already started")
        self._socket = _bind(self._config.host, self._config.port)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="zerotouch-relay")
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                while not self._server.started:
                    if self._task.done():
                        self._task.result()  # raises what went wrong (e.g. a bad TLS file)
                        raise RuntimeError("relay stopped while starting")
                    await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), and release the port."""
        task, self._task = self._task, None
        if task is not None:
            self._server.should_exit = True
            try:
                grace = self._config.request_timeout_seconds + self._config.temporal_timeout_seconds + 5
                await asyncio.wait_for(asyncio.shield(task), timeout=grace)
            except TimeoutError:
                self._server.force_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            except (Exception, SystemExit):
                # A server that failed to start has already reported it from start().
                log.debug("relay task ended with an error", exc_info=True)
        if self._socket is not None:
            self._socket.close()
