"""Transport-neutral request/response values passed between server and routes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .errors import ApiError, bad_request


@dataclass
class Request:
    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        self.query = {k: v[-1] for k, v in parse_qs(self.query_string).items()}

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""

    def json(self) -> Any:
        if not self.body:
            raise bad_request("the request body is empty")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from exc

    @property
    def dry_run(self) -> bool:
        return "dryRun" in self.query and self.query["dryRun"] != ""


@dataclass
class Response:
    status: int
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # For watch: chunks written as they come, connection closed at the end.
    stream: Iterator[bytes] | None = None

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def error_response(err: ApiError) -> Response:
    return Response(err.code, err.status())
