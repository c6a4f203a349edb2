"""Serving the relay with uvicorn inside an already running event loop.

`serve_relay` runs in the foreground (``zerotouch relay``); `RelayServer` starts it
beside other work (``zerotouch up``, tests) and stops it again.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG

from starters.relay.app import create_app
from starters.relay.config import RelayConfig
from zerotouch.http.background import BackgroundServer, bind
from zerotouch.http.protocol import protocol_with_header_deadline
from zerotouch.telemetry import Telemetry

log = logging.getLogger("zerotouch.relay")


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
    sock = bind(config.host, config.port, "relay")
    try:
        log.warning("relay listening on %s/alertmanager", _url(config, sock.getsockname()[1]))
        await uvicorn.Server(uv_config).serve(sockets=[sock])
    finally:
        sock.close()


class RelayServer(BackgroundServer):
    """The relay started in the current event loop: ``await start()``, ``port``, ``await stop()``."""

    def __init__(self, config: RelayConfig, client: Client, *, access_log: bool = False,
                 telemetry: Telemetry | None = None) -> None:
        super().__init__(
            _uvicorn_config(config, client, log_config=None, access_log=access_log, telemetry=telemetry),
            what="relay", host=config.host, port=config.port, tls=config.tls,
            grace_seconds=config.request_timeout_seconds + config.temporal_timeout_seconds + 5,
        )
