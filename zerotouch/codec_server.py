"""The codec endpoint: lets the Temporal Web UI and `temporal` CLI show encrypted payloads.

Temporal's remote codec protocol: ``POST /decode`` and ``POST /encode`` take
``{"payloads": [...]}`` (each a Payload in proto3 JSON: base64 metadata values and
data) and answer the same shape; the namespace comes in ``X-Namespace``. Anyone who
can call ``/decode`` can read every payload, so each POST needs the bearer token
(compared in constant time, never logged), bodies are bounded, and browsers may
call it only from the configured Web UI origins (CORS).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from temporalio.api.common.v1 import Payload
from uvicorn.config import LOGGING_CONFIG

from zerotouch.codec import CodecError, EncryptionCodec
from zerotouch.http.background import BackgroundServer
from zerotouch.http.limits import check_content_type, read_body
from zerotouch.http.protocol import protocol_with_header_deadline
from zerotouch.http.serving import serving_problem

log = logging.getLogger("zerotouch.codec")

TOKEN_ENV = "ZEROTOUCH_CODEC_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_PORT = 9096
DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")  # the embedded Web UI
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # Temporal's own default payload limit is 2 MiB per payload
MIN_TOKEN_LENGTH = 16
MAX_PAYLOADS = 10_000

class CodecServerConfigError(ValueError):
    """A configuration the codec endpoint refuses to serve; the message says what to change."""


@dataclass
class CodecServerConfig:
    """Where and for whom the codec endpoint serves.

    Attributes:
        token: the bearer token every POST must carry (required).
        origins: Web UI origins a browser may call from (CORS); empty = no browser access.
        namespaces: namespaces (``X-Namespace``) served; empty = any.
        max_body_bytes: larger bodies get 413 unread.
        tls_certfile, tls_keyfile: serve HTTPS with these (both or neither).
    """

    token: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    origins: list[str] = field(default_factory=lambda: list(DEFAULT_ORIGINS))
    namespaces: list[str] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_timeout_seconds: float = 10.0
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    def check(self) -> None:
        if len(self.token or "") < MIN_TOKEN_LENGTH:
            raise CodecServerConfigError(
                f"the codec endpoint needs a bearer token of at least {MIN_TOKEN_LENGTH} characters "
                f"(--token-file or ${TOKEN_ENV}); it decrypts every payload for whoever calls it"
            )
        if any(origin == "*" for origin in self.origins):
            raise CodecServerConfigError("origin '*' would let any web page call the codec; name the Web UI's origin")
        if problem := serving_problem(self.tls_certfile, self.tls_keyfile, self.max_body_bytes):
            raise CodecServerConfigError(problem)


def load_codec_token(token_file: str | None) -> str:
    """The token from ``token_file``, else ``$ZEROTOUCH_CODEC_TOKEN``; empty if neither has one."""
    if token_file:
        try:
            return Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CodecServerConfigError(f"cannot read codec token file {token_file}: {error.strerror}") from None
    return os.environ.get(TOKEN_ENV, "").strip()


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").strip().partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may carry anything.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _payloads_of(body: bytes) -> list[Payload]:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"body is not valid JSON: {error}") from None
    items = document.get("payloads") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail='body must be {"payloads": [...]}')
    if len(items) > MAX_PAYLOADS:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"at most {MAX_PAYLOADS} payloads")
    payloads = []
    for index, item in enumerate(items):
        try:
            payloads.append(json_format.ParseDict(item, Payload()))
        except (json_format.ParseError, TypeError, AttributeError) as error:
            detail = f"payloads.{index} is not a Payload in proto3 JSON: {str(error)[:200]}"
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=detail) from None
    return payloads


def create_codec_app(codec: EncryptionCodec, config: CodecServerConfig) -> FastAPI:
    """The endpoint as an ASGI app; raises `CodecServerConfigError` for a configuration it must not serve."""
    config.check()
    app = FastAPI(title="zerotouch codec endpoint", version="1", docs_url=None, redoc_url=None, openapi_url=None)

    async def convert(request: Request, operation: str) -> JSONResponse:
        # Nothing is read before the credentials are settled.
        if not _authorized(request.headers.get("authorization"), config.token):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing or invalid bearer token",
                                headers={"WWW-Authenticate": 'Bearer realm="zerotouch-codec"'})
        namespace = request.headers.get("x-namespace", "")
        if config.namespaces and namespace not in config.namespaces:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"namespace {namespace[:100]!r} is not served by this codec endpoint")
        check_content_type(request)
        body = await read_body(request, limit=config.max_body_bytes, timeout=config.request_timeout_seconds)
        payloads = _payloads_of(body)
        try:
            converted = await (codec.decode(payloads) if operation == "decode" else codec.encode(payloads))
        except CodecError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from None
        log.info("%s: %d payloads for namespace %r", operation, len(payloads), namespace[:100])
        return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in converted]})

    @app.post("/decode")
    async def decode(request: Request) -> JSONResponse:
        return await convert(request, "decode")

    @app.post("/encode")
    async def encode(request: Request) -> JSONResponse:
        return await convert(request, "encode")

    # Outermost, so preflights (which carry no credentials) and error answers get CORS headers too.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=config.origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
        max_age=600,
    )
    return app


def _uvicorn_config(codec: EncryptionCodec, config: CodecServerConfig, *, log_config: dict[str, Any] | None,
                    access_log: bool) -> uvicorn.Config:
    return uvicorn.Config(
        create_codec_app(codec, config), host=config.host, port=config.port,
        ssl_certfile=config.tls_certfile, ssl_keyfile=config.tls_keyfile,
        timeout_keep_alive=max(1, round(config.request_timeout_seconds)),
        http=protocol_with_header_deadline(config.request_timeout_seconds),
        lifespan="off", server_header=False, proxy_headers=False, log_config=log_config, access_log=access_log,
    )


class CodecServer(BackgroundServer):
    """The endpoint in the current event loop: ``await start()``, ``url``, ``await stop()``."""

    def __init__(self, codec: EncryptionCodec, config: CodecServerConfig, *, embedded: bool = True) -> None:
        # The access log has no headers in it, so the token cannot reach it.
        super().__init__(
            _uvicorn_config(codec, config, log_config=None if embedded else LOGGING_CONFIG, access_log=not embedded),
            what="codec endpoint", host=config.host, port=config.port, tls=bool(config.tls_certfile),
            grace_seconds=config.request_timeout_seconds + 5, embedded=embedded,
        )

    async def serve_until_stopped(self) -> None:
        """Foreground mode: run until uvicorn's own SIGINT/SIGTERM handling ends it."""
        await self.start()
        try:
            await self.wait()
        finally:
            await self.stop()
