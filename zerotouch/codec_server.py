"""The codec endpoint: lets the Temporal Web UI and `temporal` CLI show encrypted payloads.

Temporal's remote codec protocol: ``POST /decode`` and ``POST /encode`` take
``{"payloads": [...]}`` (each a Payload in proto3 JSON: base64 metadata values and
data) and answer the same shape; the namespace comes in ``X-Namespace``. Anyone who
can call ``/decode`` can read every payload, so each POST needs the token (compared in
constant time, never logged), bodies are bounded, and browsers may call it only from
the configured Web UI origins: CORS for the preflight, and a POST carrying any other
``Origin`` is refused outright.

Two ways to carry the token: a bearer header (`zerotouch codec-server`, production,
where the Web UI's "pass access token" or an authenticating proxy supplies it), or
the first path segment, ``/<token>/decode`` (`zerotouch up`): the dev server's Web UI
has no login and can send no header, but it calls whatever endpoint URL it is given.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
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
# A token in the URL ends up in more places than a header does (the UI's settings, the dev
# server's command line), so it is at least as strong as secrets.token_urlsafe(32).
MIN_PATH_TOKEN_LENGTH = 32
_PATH_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
MAX_PAYLOADS = 10_000

class CodecServerConfigError(ValueError):
    """A configuration the codec endpoint refuses to serve; the message says what to change."""


@dataclass
class CodecServerConfig:
    """Where and for whom the codec endpoint serves.

    Attributes:
        token: the token every POST must carry (required).
        token_in_path: carry ``token`` as the first path segment (``/<token>/decode``, a
            capability URL) instead of an ``Authorization: Bearer`` header.
        origins: Web UI origins a browser may call from (CORS, and a POST with another
            ``Origin`` is refused); empty = no browser access.
        namespaces: namespaces (``X-Namespace``) served; empty = any.
        max_body_bytes: larger bodies get 413 unread.
        tls_certfile, tls_keyfile: serve HTTPS with these (both or neither).
    """

    token: str = field(repr=False)
    token_in_path: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    origins: list[str] = field(default_factory=lambda: list(DEFAULT_ORIGINS))
    namespaces: list[str] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_timeout_seconds: float = 10.0
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    def check(self) -> None:
        if self.token_in_path:
            if len(self.token or "") < MIN_PATH_TOKEN_LENGTH or not _PATH_TOKEN.fullmatch(self.token):
                raise CodecServerConfigError(
                    f"a codec endpoint token in the URL must be at least {MIN_PATH_TOKEN_LENGTH} characters of "
                    "A-Z, a-z, 0-9, '-' and '_' (secrets.token_urlsafe(32) is)"
                )
        elif len(self.token or "") < MIN_TOKEN_LENGTH:
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


def ensure_path_token(path: Path) -> str:
    """The capability-URL token kept in ``path``: created once (0600), reused across restarts."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def _same(given: str, token: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header or path may carry anything.
    return hmac.compare_digest(given.encode(errors="surrogateescape"), token.encode())


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and _same(given.strip(), token)


def _check_origin(origin: str | None, allowed: list[str]) -> None:
    """403 for a browser calling from a page that is not the Web UI.

    CORS alone only hides the answer from such a page; the request would still be served,
    and a same-origin one (a DNS-rebound page on this very port) gets no CORS check at all.
    Browsers always send ``Origin`` on a POST, so refusing a foreign one here stops both.
    Clients that are not browsers (the `temporal` CLI) send none and need only the token.
    """
    if origin is not None and origin not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"origin {origin[:100]!r} may not call this codec endpoint")


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
    # No slash redirects: a client is answered at the URL it asked for, or refused there.
    app = FastAPI(title="zerotouch codec endpoint", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)

    async def convert(request: Request, operation: str, path_token: str | None = None) -> JSONResponse:
        # Nothing is read before the origin and the credentials are settled.
        _check_origin(request.headers.get("origin"), config.origins)
        if path_token is not None:
            if not _same(path_token, config.token):
                # The same answer as for any unknown path: a wrong token reveals nothing.
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
        elif not _authorized(request.headers.get("authorization"), config.token):
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

    if config.token_in_path:
        @app.post("/{path_token}/decode")
        async def decode_at(request: Request, path_token: str) -> JSONResponse:
            return await convert(request, "decode", path_token)

        @app.post("/{path_token}/encode")
        async def encode_at(request: Request, path_token: str) -> JSONResponse:
            return await convert(request, "encode", path_token)
    else:
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
        # Authorization-Extras: what the Web UI 2.5x adds to a passed access token (its OIDC ID token).
        allow_headers=["Authorization", "Authorization-Extras", "Content-Type", "X-Namespace"],
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
    """The endpoint in the current event loop: ``await start()``, ``url``/``endpoint``, ``await stop()``."""

    def __init__(self, codec: EncryptionCodec, config: CodecServerConfig, *, embedded: bool = True) -> None:
        # The access log has no headers in it, so a bearer token cannot reach it; it has the
        # path, so with the token in the path there is no access log at all.
        access_log = not embedded and not config.token_in_path
        super().__init__(
            _uvicorn_config(codec, config, log_config=None if embedded else LOGGING_CONFIG, access_log=access_log),
            what="codec endpoint", host=config.host, port=config.port, tls=bool(config.tls_certfile),
            grace_seconds=config.request_timeout_seconds + 5, embedded=embedded,
        )
        self._path_token = config.token if config.token_in_path else None

    @property
    def endpoint(self) -> str:
        """The URL to give a codec client (the Web UI's ``--ui-codec-endpoint``); it holds the
        token when that travels in the path, so it must never be logged."""
        return f"{self.url}/{self._path_token}" if self._path_token else self.url

    async def serve_until_stopped(self) -> None:
        """Foreground mode: run until uvicorn's own SIGINT/SIGTERM handling ends it."""
        await self.start()
        try:
            await self.wait()
        finally:
            await self.stop()
