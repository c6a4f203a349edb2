"""What the relay accepts as a body: JSON, bounded in size and time, and a valid v4 payload.

Each refusal is a 4xx whose ``detail`` is one line saying what was wrong, because
Alertmanager does not retry 4xx and a human will read the line in its log.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException, Request, status
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import ClientDisconnect

from zerotouch.alerts import WebhookPayload

MAX_REPORTED_ERRORS = 3


def check_content_type(request: Request) -> None:
    """415 unless the body is declared JSON and not compressed."""
    declared = request.headers.get("content-type", "")
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"content type must be application/json, got {media_type[:80] or 'none'!r}",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="compressed bodies are not accepted")


# After refusing a body we have not read, close the connection: otherwise the server
# would keep draining (and the client keep sending) the rest of it.
_CLOSE = {"Connection": "close"}


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"body is larger than {limit} bytes",
                         headers=_CLOSE)


async def read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The body, at most ``limit`` bytes, received within ``timeout`` seconds.

    A declared Content-Length over the limit is refused before a byte is read. A
    chunked body is counted while it streams and never held beyond ``limit``; once
    over, up to another ``limit`` bytes are read and dropped so that the client,
    which is still sending, receives the 413 instead of a connection reset.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="Content-Length is not a number", headers=_CLOSE)
        if int(declared) > limit:
            raise _too_large(limit)
    body = bytearray()
    received = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    body.clear()
                    if received > 2 * limit:
                        break
                    continue
                body += chunk
    except TimeoutError:
        if received > limit:
            raise _too_large(limit) from None
        raise HTTPException(
            status.HTTP_408_REQUEST_TIMEOUT, detail=f"body not received within {timeout:g} seconds", headers=_CLOSE
        ) from None
    except ClientDisconnect:
        # Nobody is left to read an answer; the status only shows in the access log.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="client disconnected while sending",
                            headers=_CLOSE) from None
    if received > limit:
        raise _too_large(limit)
    return bytes(body)


def _describe(error: ErrorDetails) -> str:
    # Label names can be long and attacker-chosen: shorten each path element.
    path = ".".join(str(part)[:64] for part in error["loc"]) or "body"
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {message}"


def parse_payload(body: bytes) -> WebhookPayload:
    """The validated payload; 400 for broken JSON, 422 naming the first bad fields otherwise."""
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as error:
        # include_input=False: the offending value might be a secret someone put in a label.
        details = error.errors(include_url=False, include_input=False, include_context=False)
        if any(item["type"] == "json_invalid" for item in details):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail=f"body is not valid JSON: {details[0]['msg']}"
            ) from None
        described = "; ".join(_describe(item) for item in details[:MAX_REPORTED_ERRORS])
        if len(details) > MAX_REPORTED_ERRORS:
            described += f" (and {len(details) - MAX_REPORTED_ERRORS} more)"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=described) from None
