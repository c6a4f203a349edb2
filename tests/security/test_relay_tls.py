"""The relay over HTTPS with a certificate made by `cryptography`: only TLS, only verified, still authenticated.

tests/relay/test_requests.py::test_tls checks delivery over TLS with an openssl-made
certificate; this adds what an attacker on the network would try.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from tests.relay.conftest import AUTH, TOKEN, alert, count_incidents, eventually, payload, unique_alertname
from tests.security.conftest import self_signed_certificate


async def test_relay_serves_only_verified_tls_and_still_needs_the_token(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    config = RelayConfig(host="127.0.0.1", port=0, token=TOKEN, tls_certfile=str(cert), tls_keyfile=str(key),
                         task_queue=task_queue)
    server = RelayServer(config, dev_env.client)
    await server.start()
    try:
        assert server.url.startswith("https://")
        body = payload(alert(unique_alertname()))
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert))) as trusting:
            anonymous = await trusting.post(f"{server.url}/alertmanager", json=body)
            delivered = await trusting.post(f"{server.url}/alertmanager", json=body, headers=AUTH)
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.post(f"{server.url}/alertmanager", json=body, headers=AUTH)
        plain_url = server.url.replace("https://", "http://")
        async with httpx.AsyncClient() as plain:
            # The token must never cross the wire in clear: a plain-HTTP request is not served.
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await plain.post(f"{plain_url}/alertmanager", json=body, headers=AUTH)
    finally:
        await server.stop()
    assert anonymous.status_code == 401
    assert delivered.status_code == 200
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), 1) == 1
