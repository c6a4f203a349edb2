"""The codec endpoint as `zerotouch up` serves it to the Web UI: loopback, the UI's origin only, a capability URL.

The dev server's Web UI has no login, so it calls ``{endpoint}/decode?preserveStorageRefs=true``
(and ``/encode`` when a user sends a signal or update) with ``Content-Type`` and ``X-Namespace``
only, after a CORS preflight: these tests make exactly those requests over real HTTP.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from embedded.devserver import dev_server_command
from zerotouch.codec import EncryptionCodec
from zerotouch.codec_keys import CodecKeys
from zerotouch.codec_server import CodecServer, CodecServerConfig, CodecServerConfigError, ensure_path_token
from zerotouch.temporal import data_converter

TOKEN = "Ab3_" + "x9-Q" * 10  # 44 URL-safe characters, like secrets.token_urlsafe(32)
UI = "http://127.0.0.1:8233"
UI_BY_NAME = "http://localhost:8233"
LABELS = {"namespace": "shop", "ticket": "web-ui-plaintext-marker"}
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}


def _json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def _payloads(body: dict[str, Any]) -> list[Payload]:
    return [json_format.ParseDict(item, Payload()) for item in body["payloads"]]


def _from_ui(origin: str = UI) -> dict[str, str]:
    """The headers the Web UI's browser sends: no Authorization, it has none."""
    return {"Origin": origin, "X-Namespace": "default"}


@asynccontextmanager
async def serving(codec_keys: CodecKeys, *, embedded: bool = True) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    config = CodecServerConfig(token=TOKEN, token_in_path=True, port=0, origins=[UI, UI_BY_NAME])
    server = CodecServer(EncryptionCodec(codec_keys), config, embedded=embedded)
    await server.start()
    try:
        assert server.endpoint == f"{server.url}/{TOKEN}"
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            yield server.endpoint, http
    finally:
        await server.stop()


async def test_the_ui_decodes_what_zerotouch_encrypted(codec_keys: CodecKeys) -> None:
    sealed = await data_converter(codec_keys).encode([LABELS])
    assert b"web-ui-plaintext-marker" not in sealed[0].SerializeToString()
    async with serving(codec_keys) as (endpoint, http):
        for origin in (UI, UI_BY_NAME):  # the banner's name for the UI and the dev server's
            preflight = await http.options(f"{endpoint}/decode", headers={"Origin": origin, **PREFLIGHT})
            assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == origin
            answer = await http.post(f"{endpoint}/decode?preserveStorageRefs=true", json=_json(sealed),
                                     headers=_from_ui(origin))
            assert answer.status_code == 200, answer.text
            assert answer.headers["access-control-allow-origin"] == origin
            [plain] = _payloads(answer.json())
            assert plain.metadata["encoding"] == b"json/plain"
            assert plain.data == b'{"namespace":"shop","ticket":"web-ui-plaintext-marker"}'


async def test_what_the_ui_encodes_the_workers_read(codec_keys: CodecKeys) -> None:
    # A signal or update argument typed into the UI arrives as a plain JSON payload.
    typed = Payload(metadata={"encoding": b"json/plain"}, data=b'{"by": "alice", "reason": "web-ui-typed"}')
    async with serving(codec_keys) as (endpoint, http):
        answer = await http.post(f"{endpoint}/encode?preserveStorageRefs=true", json=_json([typed]),
                                 headers=_from_ui())
        assert answer.status_code == 200, answer.text
        assert "web-ui-typed" not in answer.text
    [sealed] = _payloads(answer.json())
    assert sealed.metadata["encoding"] == b"binary/encrypted"
    # What the workers' data converter makes of it: the value the user typed.
    [value] = await data_converter(codec_keys).decode([sealed], [dict])
    assert value == {"by": "alice", "reason": "web-ui-typed"}


@pytest.mark.parametrize("path", [
    "/decode",  # the production shape, without a token
    f"/{TOKEN[:-1]}/decode",
    f"/{TOKEN}x/decode",
    f"/{TOKEN.lower()}/decode",
    "/%C3%A9" + TOKEN[2:] + "/decode",  # non-ASCII in the path
    f"/x/{TOKEN}/decode",
    f"/{TOKEN}/decode/",
    f"//{TOKEN}/decode",
    f"/{TOKEN}/other",
])
async def test_without_the_path_token_nothing_is_decoded(codec_keys: CodecKeys, path: str) -> None:
    sealed = await data_converter(codec_keys).encode([LABELS])
    async with serving(codec_keys) as (_, http):
        # Even with the token as a bearer header: in this mode only the URL carries it.
        answer = await http.post(path, json=_json(sealed), headers={**_from_ui(), "Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code in (404, 405), (path, answer.status_code)
        assert "web-ui-plaintext-marker" not in answer.text
        encode = await http.post(path.replace("decode", "encode"), json=_json(sealed), headers=_from_ui())
        assert encode.status_code in (404, 405) and "payloads" not in encode.text


@pytest.mark.parametrize("origin", [
    "http://evil.example",
    "http://127.0.0.1:8234",  # another port of this machine is another origin
    "https://127.0.0.1:8233",
    "http://127.0.0.1:8233.evil.example",
    "null",  # a sandboxed frame or a no-referrer page
])
async def test_a_foreign_origin_is_refused_preflight_and_post(codec_keys: CodecKeys, origin: str) -> None:
    sealed = await data_converter(codec_keys).encode([LABELS])
    async with serving(codec_keys) as (endpoint, http):
        preflight = await http.options(f"{endpoint}/decode", headers={"Origin": origin, **PREFLIGHT})
        assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
        # Refused by the server itself, not merely hidden from the page by missing CORS headers.
        for operation in ("decode", "encode"):
            answer = await http.post(f"{endpoint}/{operation}", json=_json(sealed), headers=_from_ui(origin))
            assert answer.status_code == 403, answer.text
            assert "may not call this codec endpoint" in answer.json()["detail"]
            assert "web-ui-plaintext-marker" not in answer.text and "payloads" not in answer.text
            assert "access-control-allow-origin" not in answer.headers


async def test_clients_without_an_origin_need_only_the_url(codec_keys: CodecKeys) -> None:
    """The `temporal` CLI (``--codec-endpoint URL``) is no browser: it sends no Origin."""
    sealed = await data_converter(codec_keys).encode([LABELS])
    async with serving(codec_keys) as (endpoint, http):
        answer = await http.post(f"{endpoint}/decode", json=_json(sealed), headers={"X-Namespace": "default"})
        assert answer.status_code == 200
        assert b"web-ui-plaintext-marker" in _payloads(answer.json())[0].data


@pytest.mark.parametrize("embedded", [True, False])
async def test_the_path_token_reaches_no_log(codec_keys: CodecKeys, embedded: bool, caplog: pytest.LogCaptureFixture,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    sealed = await data_converter(codec_keys).encode([LABELS])
    async with serving(codec_keys, embedded=embedded) as (endpoint, http):
        assert (await http.post(f"{endpoint}/decode", json=_json(sealed), headers=_from_ui())).status_code == 200
        assert (await http.post(f"{endpoint}/decode", content=b"{", headers=_from_ui())).status_code == 415
        assert (await http.post(f"{endpoint}x/decode", json=_json(sealed), headers=_from_ui())).status_code == 404
    # The server's loggers only: the test's own HTTP client logs the URLs it calls.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in server_side) + "".join(capfd.readouterr())
    assert "decode: 1 payloads" in logged, "the endpoint does log, just not the token"
    assert TOKEN not in logged and TOKEN[:16] not in logged, logged


@pytest.mark.parametrize(("token", "message"), [
    ("x" * 31, "at least 32 characters"),
    ("a" * 40 + "/../", "A-Z, a-z, 0-9"),
    ("a" * 40 + "?q", "A-Z, a-z, 0-9"),
])
def test_weak_or_unsafe_path_tokens_refuse_to_start(codec_keys: CodecKeys, token: str, message: str) -> None:
    with pytest.raises(CodecServerConfigError, match=message):
        CodecServer(EncryptionCodec(codec_keys), CodecServerConfig(token=token, token_in_path=True, origins=[UI]))


def test_the_path_token_is_private_strong_and_kept(tmp_path: Path) -> None:
    token_file = tmp_path / "codec-endpoint-token"
    token = ensure_path_token(token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(token) >= 32
    assert ensure_path_token(token_file) == token, "a restart of `up` keeps the UI's URL"
    assert ensure_path_token(tmp_path / "other") != token, "each state dir has its own"


def test_the_dev_server_is_pointed_at_the_endpoint(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:9999/{TOKEN}"
    command = dev_server_command(db_file=tmp_path / "t.db", ui_port=8233, ui_codec_endpoint=endpoint)
    assert command[command.index("--ui-codec-endpoint") + 1] == endpoint
    # Headless there is no UI to point anywhere; the flag would be meaningless.
    headless = dev_server_command(db_file=tmp_path / "t.db", headless=True, ui_codec_endpoint=endpoint)
    assert "--ui-codec-endpoint" not in headless and endpoint not in headless
    assert "--ui-codec-endpoint" not in dev_server_command(db_file=tmp_path / "t.db")
