"""The codec endpoint over real HTTP: Temporal's remote codec protocol, bearer token, CORS, limits, TLS."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from tests.security.conftest import KEY_LINES, self_signed_certificate
from tests.support.processes import ChildProcess, zerotouch_command
from zerotouch.codec import METADATA_KEY_ID, EncryptionCodec
from zerotouch.codec_keys import CodecKeys, new_key_line, parse_keys
from zerotouch.codec_server import CodecServer, CodecServerConfig, CodecServerConfigError, create_codec_app
from zerotouch.ports import free_port

TOKEN = "codec-token-" + "7" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
UI = "http://127.0.0.1:8233"
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"customer": "acme-plaintext"}')


def _json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def _payloads(body: dict[str, Any]) -> list[Payload]:
    return [json_format.ParseDict(item, Payload()) for item in body["payloads"]]


@asynccontextmanager
async def serving(codec_keys: CodecKeys, **overrides: Any) -> AsyncIterator[tuple[CodecServer, httpx.AsyncClient]]:
    config = CodecServerConfig(**{"token": TOKEN, "port": 0, "origins": [UI], **overrides})
    server = CodecServer(EncryptionCodec(codec_keys), config)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            yield server, http
    finally:
        await server.stop()


async def test_encode_then_decode_round_trips_in_proto3_json(codec_keys: CodecKeys) -> None:
    async with serving(codec_keys) as (_, http):
        encoded = await http.post("/encode", json=_json([PLAIN, PLAIN]), headers=AUTH)
        assert encoded.status_code == 200, encoded.text
        sealed = _payloads(encoded.json())
        assert [p.metadata[METADATA_KEY_ID] for p in sealed] == [b"k-new", b"k-new"]
        assert "acme-plaintext" not in encoded.text
        # proto3 JSON: metadata values and data are base64 strings.
        item = encoded.json()["payloads"][0]
        assert base64.b64decode(item["metadata"]["encoding"]) == b"binary/encrypted"
        decoded = await http.post("/decode", json=encoded.json(), headers=AUTH)
        assert decoded.status_code == 200, decoded.text
        assert _payloads(decoded.json()) == [PLAIN, PLAIN]
        # What a client without the codec wrote comes back untouched.
        passthrough = await http.post("/decode", json=_json([PLAIN]), headers=AUTH)
        assert _payloads(passthrough.json()) == [PLAIN]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token-wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer t\u00f6ken-non-ascii".encode("latin-1")},
])
async def test_every_post_needs_the_bearer_token(codec_keys: CodecKeys, headers: dict[str, Any],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sealed = await EncryptionCodec(codec_keys).encode([PLAIN])
    async with serving(codec_keys) as (_, http):
        for path in ("/decode", "/encode"):
            answer = await http.post(path, json=_json(sealed), headers=headers)
            assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
            assert "acme-plaintext" not in answer.text
        accepted = await http.post("/decode", json=_json(sealed), headers=AUTH)
        assert accepted.status_code == 200
    assert TOKEN not in caplog.text, "the token is never logged"


async def test_cors_allows_only_the_configured_web_ui(codec_keys: CodecKeys) -> None:
    preflight_headers = {"Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    async with serving(codec_keys) as (_, http):
        allowed = await http.options("/decode", headers={"Origin": UI, **preflight_headers})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI
        assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
        refused = await http.options("/decode", headers={"Origin": "http://evil.example", **preflight_headers})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        # The real request from the UI carries the CORS answer too; another origin's does not.
        from_ui = await http.post("/decode", json=_json([PLAIN]), headers={**AUTH, "Origin": UI})
        assert from_ui.headers["access-control-allow-origin"] == UI
        elsewhere = await http.post("/decode", json=_json([PLAIN]), headers={**AUTH, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in elsewhere.headers


async def test_bad_bodies_get_4xx_that_say_why(codec_keys: CodecKeys) -> None:
    async with serving(codec_keys, max_body_bytes=2048) as (_, http):
        too_big = await http.post("/decode", content=b'{"payloads": [' + b" " * 4096 + b"]}",
                                  headers={**AUTH, "Content-Type": "application/json"})
        assert too_big.status_code == 413 and "larger than 2048 bytes" in too_big.json()["detail"]
        cases: list[tuple[bytes, str, int]] = [
            (b"{not json", "not valid JSON", 400),
            (b'{"items": []}', '{"payloads": [...]}', 400),
            (b'{"payloads": [{"data": 5}]}', "payloads.0 is not a Payload", 400),
            (b'{"payloads": [{}, 1]}', "payloads.1 is not a Payload", 400),
            (b'{"payloads": [{"unknown": 1}]}', "payloads.0 is not a Payload", 400),
        ]
        for body, message, code in cases:
            answer = await http.post("/decode", content=body, headers={**AUTH, "Content-Type": "application/json"})
            assert answer.status_code == code and message in answer.json()["detail"], answer.text
        wrong_type = await http.post("/decode", content=b"{}", headers={**AUTH, "Content-Type": "text/plain"})
        assert wrong_type.status_code == 415


async def test_unknown_key_and_tampering_are_422_naming_the_problem(codec_keys: CodecKeys) -> None:
    stranger = EncryptionCodec(parse_keys(new_key_line("k-retired"), "retired"))
    [unknown] = await stranger.encode([PLAIN])
    [sealed] = await EncryptionCodec(codec_keys).encode([PLAIN])
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 0x80])
    async with serving(codec_keys) as (_, http):
        answer = await http.post("/decode", json=_json([unknown]), headers=AUTH)
        assert answer.status_code == 422 and "key 'k-retired', which is not configured" in answer.json()["detail"]
        answer = await http.post("/decode", json=_json([sealed]), headers=AUTH)
        assert answer.status_code == 422 and "failed authentication" in answer.json()["detail"]


async def test_namespaces_can_be_restricted(codec_keys: CodecKeys) -> None:
    async with serving(codec_keys, namespaces=["prod"]) as (_, http):
        other = await http.post("/decode", json=_json([PLAIN]), headers={**AUTH, "X-Namespace": "staging"})
        assert other.status_code == 403 and "'staging' is not served" in other.json()["detail"]
        prod = await http.post("/decode", json=_json([PLAIN]), headers={**AUTH, "X-Namespace": "prod"})
        assert prod.status_code == 200


@pytest.mark.parametrize(("overrides", "message"), [
    ({"token": ""}, "needs a bearer token"),
    ({"token": "short"}, "at least 16 characters"),
    ({"origins": ["*"]}, "origin '\\*'"),
    ({"tls_certfile": "/nonexistent/cert.pem"}, "both a certificate and a key"),
])
def test_unsafe_configurations_refuse_to_start(codec_keys: CodecKeys, overrides: dict[str, Any], message: str) -> None:
    config = CodecServerConfig(**{"token": TOKEN, **overrides})
    with pytest.raises(CodecServerConfigError, match=message):
        create_codec_app(EncryptionCodec(codec_keys), config)
    assert TOKEN not in repr(CodecServerConfig(token=TOKEN))


async def test_tls_with_a_self_signed_certificate(codec_keys: CodecKeys, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    async with serving(codec_keys, tls_certfile=str(cert), tls_keyfile=str(key)) as (server, _):
        assert server.url.startswith("https://")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert))) as trusting:
            answer = await trusting.post(f"{server.url}/decode", json=_json([PLAIN]), headers=AUTH)
            assert answer.status_code == 200
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.post(f"{server.url}/decode", json=_json([PLAIN]), headers=AUTH)


async def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    keys_file, token_file = tmp_path / "keys", tmp_path / "token"
    keys_file.write_text("\n".join(KEY_LINES) + "\n")
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    command = zerotouch_command("codec-server", "--port", str(port), "--keys-file", str(keys_file),
                                "--token-file", str(token_file), "--origin", UI)
    process = await ChildProcess.start(command, log=tmp_path / "codec.log", name="zerotouch codec-server")
    try:
        url = f"http://127.0.0.1:{port}"
        sealed = await EncryptionCodec(parse_keys("\n".join(KEY_LINES), "keys")).encode([PLAIN])
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(100):
                process.check_alive()
                try:
                    answer = await http.post(f"{url}/decode", json=_json(sealed), headers=AUTH)
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            assert answer.status_code == 200 and _payloads(answer.json()) == [PLAIN]
            assert (await http.post(f"{url}/decode", json=_json(sealed))).status_code == 401
    finally:
        await process.stop()
    log = (tmp_path / "codec.log").read_text()
    assert TOKEN not in log and "POST /decode" in log, log


def test_cli_without_keys_or_token_says_so(tmp_path: Path) -> None:
    import subprocess

    env = {"ZEROTOUCH_STATE_DIR": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"}
    no_keys = subprocess.run(zerotouch_command("codec-server"), capture_output=True, text=True, env=env, timeout=60)
    assert no_keys.returncode == 2 and "no codec keys" in no_keys.stderr
    keys_file = tmp_path / "keys"
    keys_file.write_text(KEY_LINES[0] + "\n")
    no_token = subprocess.run(zerotouch_command("codec-server", "--keys-file", str(keys_file)),
                              capture_output=True, text=True, env=env, timeout=60)
    assert no_token.returncode == 1 and "needs a bearer token" in no_token.stderr
