"""Asking Alertmanager whether an incident's alerts still fire, before the incident closes.

An incident closes after its resolution cooldown. If the relay was down while the fault came
back, Alertmanager's firing set never changed and it sends nothing until repeat_interval, so
the incident asks the source instead (RELIABILITY.md, "An incident does not close while its
alert still fires at the source"). Here: where Alertmanager is, the question and the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from zerotouch.durations import Duration
from zerotouch.runbooks import PolicyModel

MAX_URL_LENGTH = 2048


def source_url(value: str) -> str:
    """An Alertmanager base URL, normalised (no trailing slash); ValueError saying what is wrong.

    It comes from a webhook body (``externalURL``) or the policy, and a worker will send requests
    to it: http(s) only, a host, no credentials (they would land in the workflow history), no
    query or fragment (the API path is appended), bounded length.
    """
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"the Alertmanager URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) <= 32 or ord(char) == 127 for char in value):
        raise ValueError("the Alertmanager URL contains spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"the Alertmanager URL is not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the Alertmanager URL must be http:// or https:// with a host, e.g. http://alertmanager:9093")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the Alertmanager URL must not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError("the Alertmanager URL must not have a query or fragment")
    if port == 0:
        raise ValueError("the Alertmanager URL has port 0")
    return value.rstrip("/")


def usable_source_url(value: str) -> str:
    """`source_url`, or "" when it is not usable: a bad externalURL must not cost the alerts."""
    try:
        return source_url(value) if value else ""
    except ValueError:
        return ""


class AlertmanagerSettings(PolicyModel):
    """Where incidents confirm that their alerts resolved, and how long they wait for an answer."""

    url: str = Field(
        default="",
        description="Alertmanager's base URL as the workers reach it; overrides the webhook's externalURL",
    )
    escalate_unconfirmed_after: Duration = Field(
        default=timedelta(hours=6),
        description="a resolved incident Alertmanager cannot confirm for this long escalates to a human",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return source_url(value) if value else ""


class SourceCheck(BaseModel):
    """Which of an incident's alerts are active (not silenced, not inhibited) at Alertmanager."""

    url: str
    # Equality matchers every alert of the incident carries: they narrow Alertmanager's answer.
    matchers: dict[str, str] = Field(default_factory=dict)
    fingerprints: list[str] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return source_url(value)


class SourceAlert(BaseModel):
    """One of the incident's alerts as Alertmanager lists it: active, neither silenced nor inhibited."""

    fingerprint: str
    alertname: str = ""
    starts_at: datetime | None = None


class SourceAnswer(BaseModel):
    """The incident's alerts Alertmanager lists as active; ``listed``: alerts the filter returned."""

    active: list[SourceAlert] = Field(default_factory=list)
    listed: int = 0
