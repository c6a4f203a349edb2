"""Alertmanager's webhook payload (version 4) and the alert event that incidents receive.

The payload shape follows Alertmanager's webhook receiver documentation; unknown
extra fields are tolerated (Alertmanager adds fields over time), but every field
the relay relies on is checked, so a bad body gets a 4xx naming the field.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zerotouch.alertmanager_source import usable_source_url
from zerotouch.names import INCIDENT_ID_PREFIX
from zerotouch.workloads import workload_key

MAX_LABELS = 64
MAX_LABEL_NAME = 128
MAX_LABEL_VALUE = 1024
MAX_ANNOTATION_VALUE = 8192

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _check_labels(value: dict[str, str], *, value_limit: int) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} entries allowed, got {len(value)}")
    for name, item in value.items():
        if len(name) > MAX_LABEL_NAME or not _LABEL_NAME.match(name):
            raise ValueError(f"label name {name[:40]!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if len(item) > value_limit:
            raise ValueError(f"value of {name!r} is longer than {value_limit} characters")
    return value


class WebhookAlert(BaseModel):
    """One alert as Alertmanager sends it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=4096)
    fingerprint: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9]*$")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if "alertname" not in value:
            raise ValueError("labels must include 'alertname'")
        return _check_labels(value, value_limit=MAX_LABEL_VALUE)

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value, value_limit=MAX_ANNOTATION_VALUE)


class WebhookPayload(BaseModel):
    """The body Alertmanager posts to a webhook receiver (``version: "4"``)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", max_length=4096)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=256)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL", max_length=4096)
    # No count limit: Alertmanager sends a whole aggregation group (thousands of alerts in a storm)
    # and drops it for good on a 4xx; the relay's body limit is what bounds a payload.
    alerts: list[WebhookAlert] = Field(min_length=1)


class AlertEvent(BaseModel):
    """What an incident is told about one alert delivery (signal ``alert_fired``/``alert_resolved``)."""

    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    received_at: datetime | None = None
    source: str = "alertmanager"
    # The sending Alertmanager's externalURL: where the incident confirms its alerts resolved.
    # Anything but a plain http(s) URL is dropped ("" = unknown), never refused: the alert counts more.
    external_url: str = ""

    @field_validator("external_url")
    @classmethod
    def _external_url(cls, value: str) -> str:
        return usable_source_url(value)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


def fingerprint_of(labels: dict[str, str]) -> str:
    """A stable fingerprint for alerts that arrive without one (e.g. from ``zerotouch fire``)."""
    canonical = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def to_event(alert: WebhookAlert, received_at: datetime | None = None, external_url: str = "") -> AlertEvent:
    """Turn a validated webhook alert into the event an incident receives (``external_url``: the payload's)."""
    return AlertEvent(
        fingerprint=alert.fingerprint or fingerprint_of(alert.labels),
        status=alert.status,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        received_at=received_at,
        external_url=external_url,
    )


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
WORKLOAD_GROUP = "workload"  # a derived grouping label (`zerotouch.workloads.workload_key`)


def group_value(labels: dict[str, str], name: str) -> str:
    """One grouping label's value; ``workload`` is derived, so pods of one Deployment share it."""
    if name == WORKLOAD_GROUP and name not in labels:
        return workload_key(labels)
    return labels.get(name, "")


def incident_id_for(event: AlertEvent, group_by: list[str], cluster: str = "") -> str:
    """The workflow ID of the incident an alert belongs to.

    With ``group_by`` labels (from the policy) alerts sharing those labels join one
    incident; without, each fingerprint is its own incident. The readable part is
    sanitised and the hash keeps IDs distinct when sanitising merged two keys. A cluster
    scope is part of the ID: the same alert from two clusters sharing a namespace is two
    incidents, each on its own cluster's task queue.
    """
    if group_by:
        values = [group_value(event.labels, name) for name in group_by]
        key = "\x00".join(f"{n}={v}" for n, v in zip(group_by, values, strict=True))
        readable = "-".join(v for v in values if v)
    else:
        key = event.fingerprint
        readable = event.alertname
    if cluster:
        key = f"cluster={cluster}\x00{key}"
        readable = f"{cluster}-{readable}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    slug = _ID_UNSAFE.sub("_", readable)[:80].strip("_.-") or "alert"
    return f"{INCIDENT_ID_PREFIX}{slug}-{digest}"
