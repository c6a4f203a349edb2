"""What an endpoint accepts as a body: JSON, uncompressed, bounded in size and time.

Each refusal is a 4xx whose ``detail`` is one line saying what was wrong, because the
clients (Alertmanager, the Web UI) do not retry 4xx and a human will read the line in a log.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException, Request, status
from starlette.requests import ClientDisconnect


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
    """`receive_body` as immutable ``bytes`` (one copy of the body)."""
    return bytes(await receive_body(request, limit=limit, timeout=timeout))


async def receive_body(request: Request, *, limit: int, timeout: float) -> bytearray:
    """The body, at most ``limit`` bytes, received within ``timeout`` seconds.

    A declared Content-Length over the limit is refused before a byte is read. A
    chunked body is counted while it streams and never held beyond ``limit``; once
    over, up to another ``limit`` bytes are read and dropped so that the client,
    which is still sending, receives the 413 instead of a connection reset.

    The chunks are appended to one buffer, which is returned as it is: a body of
    several MiB is held once, not once more as ``bytes`` (pydantic's and the stdlib's
    JSON parsers read a ``bytearray`` directly).
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
    return body
