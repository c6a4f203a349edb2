"""Serving: the foreground `serve_relay` of `zerotouch relay`, and `RelayServer` releasing its port."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
from temporalio.testing import WorkflowEnvironment

from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer, serve_relay
from tests.relay.conftest import TOKEN
from zerotouch.ports import free_port


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_serve_relay_serves_until_cancelled(dev_env: WorkflowEnvironment) -> None:
    port = free_port()
    task = asyncio.create_task(serve_relay(RelayConfig(port=port, token=TOKEN), dev_env.client))
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                with contextlib.suppress(httpx.ConnectError):
                    answer = await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                await asyncio.sleep(0.05)
        assert answer.status_code == 200
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert _port_is_free(port)


async def test_relay_server_stop_releases_the_port_and_is_idempotent(dev_env: WorkflowEnvironment) -> None:
    server = RelayServer(RelayConfig(port=0, token=TOKEN), dev_env.client)
    await server.start()
    port = server.port
    await server.stop()
    await server.stop()
    assert _port_is_free(port)
