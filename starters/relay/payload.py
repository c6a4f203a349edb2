"""Whether a body is a valid Alertmanager v4 payload; 400 or 422 naming what is wrong if not."""

from __future__ import annotations

from fastapi import HTTPException, status
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from zerotouch.alerts import WebhookPayload

MAX_REPORTED_ERRORS = 3


def _describe(error: ErrorDetails) -> str:
    # Label names can be long and attacker-chosen: shorten each path element.
    path = ".".join(str(part)[:64] for part in error["loc"]) or "body"
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {message}"


def parse_payload(body: bytes | bytearray) -> WebhookPayload:
    """The validated payload; 400 for broken JSON, 422 naming the first bad fields otherwise.

    Parsed straight from the received buffer (no decoded copy of the text, no intermediate
    ``dict``): pydantic's JSON parser builds the models as it reads and refuses nesting deeper
    than 200 levels as invalid JSON.
    """
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
