"""What the relay refuses, with which status and message, before anything reaches Temporal."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from starters.fire import fire_alert
from starters.relay.app import create_app
from starters.relay.config import RelayConfig, RelayConfigError, load_token
from starters.relay.server import RelayServer
from tests.relay.conftest import AUTH, TOKEN, alert, count_incidents, eventually, payload, unique_alertname

Relay = Callable[..., Any]
_JSON = {"Content-Type": "application/json"}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_malformed_json_is_400(relay: Relay) -> None:
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", content=b'{"version": "4", ', headers=AUTH | _JSON)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("body is not valid JSON")


def _without(key: str) -> dict[str, Any]:
    body = payload(alert("X"))
    del body[key]
    return body


def _alert_labels(labels: dict[str, str]) -> dict[str, Any]:
    body = payload(alert("X"))
    body["alerts"][0]["labels"] = labels
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_without("version"), "version: Field required"),
        ({**payload(alert("X")), "version": "3"}, "version: Input should be '4'"),
        (_alert_labels({"namespace": "shop"}), "alerts.0.labels: labels must include 'alertname'"),
        ({**payload(alert("X")), "alerts": []}, "alerts: List should have at least 1 item"),
        (_alert_labels({"alertname": "X", "bad-name": "v"}), "alerts.0.labels: label name 'bad-name' must match"),
        ([1, 2], "body: Input should be an object"),
    ],
    ids=["no-version", "wrong-version", "no-alertname", "no-alerts", "bad-label-name", "not-an-object"],
)
async def test_schema_errors_are_422_naming_the_field(relay: Relay, body: Any, expected: str) -> None:
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=body, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(expected), answer.json()
    assert len(answer.text) < 1000, "one line, not a dump"


async def test_many_errors_are_summarised(relay: Relay) -> None:
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json={"version": "4"}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "groupKey: Field required; status: Field required; receiver: Field required (and 1 more)"
    )


async def test_wrong_content_type_is_415(relay: Relay) -> None:
    async with relay() as (_, http):
        form = await http.post("/alertmanager", data={"a": "b"}, headers=AUTH)
        gzip = await http.post("/alertmanager", content=b"{}", headers=AUTH | _JSON | {"Content-Encoding": "gzip"})
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    assert gzip.status_code == 415


async def _raw_exchange(port: int, data: bytes, *, within: float = 5) -> bytes:
    """Send raw bytes and return everything the relay sends back until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=within)
    finally:
        writer.close()


_POST_HEAD = (
    b"POST /alertmanager HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
    + f"Authorization: Bearer {TOKEN}\r\n".encode()
)


async def test_declared_oversized_body_is_refused_before_it_is_sent(relay: Relay) -> None:
    async with relay(max_body_bytes=1024) as (server, _):
        # Announce 100 MB but send none of it: the answer, and the close, must not wait for the body.
        answer = await _raw_exchange(server.port, _POST_HEAD + b"Content-Length: 100000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("chunks_sent", [3, 4, 10_000], ids=["just-over", "drained", "endless"])
async def test_chunked_oversized_body_is_413(relay: Relay, chunks_sent: int) -> None:
    async with relay(max_body_bytes=1024) as (server, _):
        head = _POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        chunk = b"200\r\n" + b" " * 512 + b"\r\n"
        # Raw, because httpx insists on sending the whole body before it reads an answer.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(head)
            for _ in range(chunks_sent):
                writer.write(chunk)
                if writer.is_closing():
                    break
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            if not writer.is_closing():
                writer.write(b"0\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), timeout=5)
        except ConnectionResetError:
            answer = b"reset"
        finally:
            writer.close()
    if chunks_sent <= 4:
        assert answer.startswith(b"HTTP/1.1 413")
        assert b"body is larger than 1024 bytes" in answer
    else:
        # A client that keeps sending after the 413 is cut off, with or without reading the answer.
        assert answer.startswith(b"HTTP/1.1 413") or answer in (b"", b"reset")


async def test_chunked_oversized_body_gets_413_with_an_ordinary_client(relay: Relay) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 512

    async with relay(max_body_bytes=1024) as (_, http):
        answer = await http.post("/alertmanager", content=chunks(), headers=AUTH | _JSON)
    assert answer.status_code == 413
    assert answer.json()["detail"] == "body is larger than 1024 bytes"


async def test_body_within_limit_is_accepted_even_when_chunked(relay: Relay) -> None:
    encoded = json.dumps(payload(alert(unique_alertname()))).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(encoded), 100):
            yield encoded[start:start + 100]

    async with relay() as (_, http):
        answer = await http.post("/alertmanager", content=chunks(), headers=AUTH | _JSON)
    assert answer.status_code == 200, answer.text


async def test_slow_body_times_out_with_408(relay: Relay) -> None:
    async with relay(request_timeout_seconds=0.5) as (server, _):
        answer = await _raw_exchange(server.port, _POST_HEAD + b'Content-Length: 100\r\n\r\n{"version":')
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /alertmanager HTTP/1.1\r\nHost: relay\r\n"],
    ids=["connects-and-says-nothing", "headers-never-finish"],
)
async def test_silent_or_slow_headers_are_dropped(relay: Relay, sent: bytes) -> None:
    async with relay(request_timeout_seconds=0.5) as (server, _):
        started = asyncio.get_running_loop().time()
        answer = await _raw_exchange(server.port, sent, within=5)
        waited = asyncio.get_running_loop().time() - started
    assert answer == b"" and waited < 3


async def test_kept_alive_connection_serves_more_requests(relay: Relay) -> None:
    # The header deadline must not cut a healthy keep-alive connection between requests.
    async with relay(request_timeout_seconds=1) as (_, http):
        first = await http.get("/healthz")
        await asyncio.sleep(0.6)
        second = await http.get("/healthz")
        await asyncio.sleep(0.6)
        third = await http.get("/healthz")
    assert first.status_code == second.status_code == third.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN},
     _basic("am", "wrong"), _basic("nobody", "secret")],
    ids=["none", "wrong-token", "token-as-basic", "no-scheme", "wrong-password", "unknown-user"],
)
async def test_missing_or_invalid_credentials_are_401(relay: Relay, headers: dict[str, str]) -> None:
    async with relay(basic_users={"am": "secret"}) as (_, http):
        answer = await http.post("/alertmanager", json=payload(alert(unique_alertname())), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="zerotouch-relay", Basic realm="zerotouch-relay"'
    assert TOKEN not in answer.text and "secret" not in answer.text


async def test_credentials_are_checked_before_the_body(relay: Relay) -> None:
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", content=b"not json", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 401


async def test_basic_auth_works(relay: Relay, dev_env: WorkflowEnvironment, task_queue: str) -> None:
    async with relay(token=None, basic_users={"alertmanager": "s3cret:with:colons"}) as (_, http):
        answer = await http.post("/alertmanager", json=payload(alert(unique_alertname())),
                                 headers=_basic("alertmanager", "s3cret:with:colons"))
        bearer = await http.post("/alertmanager", json=payload(alert(unique_alertname())), headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert bearer.status_code == 401 and bearer.headers["WWW-Authenticate"] == 'Basic realm="zerotouch-relay"'


async def test_loopback_relay_without_credentials_needs_none(relay: Relay) -> None:
    async with relay(token=None) as (_, http):
        answer = await http.post("/alertmanager", json=payload(alert(unique_alertname())))
    assert answer.status_code == 200


async def test_healthz_needs_no_auth_and_reports_temporal(relay: Relay) -> None:
    async with relay() as (_, http):
        answer = await http.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "temporal": "reachable"}


async def test_openapi_documents_payload_auth_and_codes(relay: Relay) -> None:
    async with relay() as (_, http):
        spec = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert docs.status_code == 200
    post = spec["paths"]["/alertmanager"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookPayload"
    }
    assert {"200", "400", "401", "413", "415", "422", "503"} <= set(post["responses"])
    assert "Retry-After" in post["responses"]["503"]["headers"]
    schemas = spec["components"]["schemas"]
    assert "startsAt" in schemas["WebhookAlert"]["properties"]
    assert schemas["WebhookPayload"]["properties"]["alerts"]["items"] == {"$ref": "#/components/schemas/WebhookAlert"}
    assert set(spec["components"]["securitySchemes"]) == {"bearerToken", "basicAuth"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "relay.example.com"])
def test_non_loopback_host_without_credentials_refuses_to_start(dev_env: WorkflowEnvironment, host: str) -> None:
    with pytest.raises(RelayConfigError, match="no credentials are set"):
        RelayServer(RelayConfig(host=host, port=0), dev_env.client)
    with pytest.raises(RelayConfigError):
        create_app(client=dev_env.client, config=RelayConfig(host=host, token=""))


async def test_non_loopback_host_with_a_token_serves(dev_env: WorkflowEnvironment) -> None:
    server = RelayServer(RelayConfig(host="0.0.0.0", port=0, token=TOKEN), dev_env.client)
    await server.start()
    try:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{server.port}/healthz")
    finally:
        await server.stop()
    assert answer.status_code == 200


def test_config_errors_say_what_to_change(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    with pytest.raises(RelayConfigError, match="both a certificate and a key"):
        create_app(client=dev_env.client, config=RelayConfig(tls_certfile=str(tmp_path / "cert.pem")))
    with pytest.raises(RelayConfigError, match="does not exist"):
        create_app(client=dev_env.client, config=RelayConfig(tls_certfile=str(tmp_path / "c"),
                                                             tls_keyfile=str(tmp_path / "k")))
    with pytest.raises(RelayConfigError, match="non-empty password"):
        create_app(client=dev_env.client, config=RelayConfig(basic_users={"am": ""}))


def test_config_repr_hides_secrets() -> None:
    config = RelayConfig(token=TOKEN, basic_users={"am": "secret"})
    assert TOKEN not in repr(config) and "secret" not in repr(config)


async def test_busy_port_fails_start_clearly(relay: Relay, dev_env: WorkflowEnvironment) -> None:
    async with relay() as (server, _):
        second = RelayServer(RelayConfig(port=server.port, token=TOKEN), dev_env.client)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            await second.start()


async def test_tls(relay: Relay, dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    config = RelayConfig(port=0, token=TOKEN, tls_certfile=str(cert), tls_keyfile=str(key), task_queue=task_queue)
    server = RelayServer(config, dev_env.client)
    await server.start()
    try:
        assert server.url.startswith("https://")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert))) as http:
            answer = await http.post(f"{server.url}/alertmanager", json=payload(alert(unique_alertname())),
                                     headers=AUTH)
        fired = await asyncio.to_thread(fire_alert, server.url, TOKEN, unique_alertname(), {}, {}, False,
                                        verify=str(cert))
    finally:
        await server.stop()
    assert answer.status_code == 200
    assert fired["accepted"] == 1
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), 2) == 2


def test_load_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  abc123\n")
    monkeypatch.setenv("ZEROTOUCH_RELAY_TOKEN", " from-env \n")
    assert load_token(str(token_file)) == "abc123"
    assert load_token(None) == "from-env"
    monkeypatch.setenv("ZEROTOUCH_RELAY_TOKEN", "   ")
    assert load_token(None) is None
    monkeypatch.delenv("ZEROTOUCH_RELAY_TOKEN")
    assert load_token(None) is None
    with pytest.raises(RelayConfigError, match="cannot read relay token file"):
        load_token(str(tmp_path / "missing"))
