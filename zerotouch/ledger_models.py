"""The incident ledger's payloads: what the workflow sends at close, and what is kept.

A ledger record is the immutable, reviewable account of one incident run
(seed phase 66, "Audit & Forensics"). Records are hash-chained
(`zerotouch.ledger_chain`), so every field here is part of what the chain
protects; fields are added with defaults only, so old records keep verifying.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from zerotouch.models import IncidentStatus, TimelineEntry
from zerotouch.runbooks import Severity

Outcome = Literal["resolved", "escalated", "aborted", "closed", "taken_over"]
GENESIS_HASH = "0" * 64


class LedgerEntryInput(BaseModel):
    """What the incident workflow hands to `append_incident_record` when it closes."""

    status: IncidentStatus
    run_id: str = Field(min_length=1, description="the workflow run: one record per (incident_id, run_id)")
    outcome: Outcome
    first_alert_starts_at: datetime | None = Field(
        default=None, description="Alertmanager's startsAt of the first alert; MTTD/MTTR count from here"
    )
    user_impact: str = Field(default="", description="Policy.user_impact for the incident's severity")
    closed_at: datetime


class AlertRef(BaseModel):
    """An alert that joined the incident: its name and labels, never annotation values."""

    alertname: str
    labels: dict[str, str] = Field(default_factory=dict)


class LedgerAction(BaseModel):
    action: str
    target: str
    attempt: int
    grant: str = Field(default="", description="the Governor's grant message that allowed it")
    outcome: str
    detail: str = ""
    at: datetime


class LedgerVerification(BaseModel):
    at: datetime
    verified: bool
    detail: str


class HumanStep(BaseModel):
    """A person's hand in the incident: approval, abort, take-over, retry request, recovery while owning."""

    at: datetime
    actor: str
    kind: str
    message: str


class LedgerRecord(BaseModel):
    """One closed incident run, as kept forever.

    `root_cause_class` is the matched runbook's name (the runbook encodes the
    diagnosis); when no runbook matched it is the first alert's alertname, so
    unmatched incidents still group by what fired. All free text (labels,
    timeline, action details, the post-mortem) is redacted before it is stored.
    `seq`, `prev_hash` and `hash` are assigned by the store when appending.
    """

    seq: int = 0
    incident_id: str
    run_id: str
    recorded_at: datetime
    outcome: Outcome
    severity: Severity | None = None
    runbook: str | None = None
    root_cause_class: str
    confidence: float | None = None
    target: str = ""
    alerts: list[AlertRef] = Field(default_factory=list)
    actions: list[LedgerAction] = Field(default_factory=list)
    verifications: list[LedgerVerification] = Field(default_factory=list)
    humans: list[HumanStep] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    alert_started_at: datetime | None = None
    detected_at: datetime | None = None
    triaged_at: datetime | None = None
    first_action_at: datetime | None = None
    recovered_at: datetime | None = None
    closed_at: datetime
    mttd_seconds: float | None = Field(default=None, description="alert startsAt → detected")
    mttr_seconds: float | None = Field(default=None, description="alert startsAt → recovered; None if not recovered")
    automated: bool = Field(description="True when no human stepped in and it did not end escalated")
    user_impact: str = ""
    postmortem: str = ""
    kind: str = Field(default="incident", description="incident, or backup_verification (evidence of a test restore)")
    evidence: dict[str, Any] | None = Field(default=None, description="backup_verification: the report, as kept")
    prev_hash: str = ""
    hash: str = ""


class LedgerReceipt(BaseModel):
    seq: int
    hash: str
    already_recorded: bool = False


class VerifyResult(BaseModel):
    ok: bool
    records: int
    problems: list[str] = Field(default_factory=list, description="each names the record's seq and incident")
