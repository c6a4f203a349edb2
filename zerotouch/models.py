"""One model in, one model out: the payloads of workflows, activities, signals and updates.

Fields are added with defaults only, so running workflows keep decoding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field

from zerotouch.action_params import ActionName, ActionParams, parse_params
from zerotouch.alerts import AlertEvent
from zerotouch.approval_proofs import ApprovalProof
from zerotouch.policy import Channel, Policy
from zerotouch.runbooks import Severity, SymptomKind

IncidentState = Literal[
    "open",
    "triaged",
    "awaiting_approval",
    "remediating",
    "verifying",
    "resolved",
    "escalated",
    "taken_over",
    "aborted",
    "closed",
]
INCIDENT_STATES: tuple[str, ...] = get_args(IncidentState)


# --- incident workflow -------------------------------------------------------------


class IncidentInput(BaseModel):
    incident_id: str
    policy: Policy | None = Field(default=None, description="pinned policy; default: load through an activity")
    service: str = ""
    cluster: str = Field(default="", description="scope: activity task queues get this suffix")


class AlertForward(BaseModel):
    """Alerts an incident hands to the incident they turned out to belong to (`forward_alerts`)."""

    incident_id: str
    cluster: str = ""
    events: list[AlertEvent] = Field(min_length=1)


class TimelineEntry(BaseModel):
    at: datetime
    kind: str = Field(description="detected, triaged, action, verification, resolution, escalation, ...")
    message: str
    actor: str = "zerotouch"


class PendingApproval(BaseModel):
    request_id: str
    what: str
    reason: str
    requested_by: str = "zerotouch"
    requested_at: datetime
    expires_at: datetime | None = Field(
        default=None, description="after this, approving is refused; a retry asks again")


class ActionRecord(BaseModel):
    step: int
    attempt: int
    action: ActionName
    target: str
    idempotency_key: str
    outcome: str
    detail: str = ""
    at: datetime


class IncidentStatus(BaseModel):
    """Answer of the ``status`` query and the result of the workflow."""

    incident_id: str
    state: IncidentState
    severity: Severity | None = None
    runbook: str | None = None
    confidence: float | None = None
    service: str = ""
    target: str = ""
    frozen: bool = False
    owner: str | None = None
    attempts: int = 0
    alerts_received: int = 0
    firing: bool = False
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    pending_approval: PendingApproval | None = None
    actions: list[ActionRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class ApproveInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)
    proof: ApprovalProof | None = Field(default=None, description="required when the policy verifies approvers")


class AbortInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


class TakeOverInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)


class RetryRequestInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)
    proof: ApprovalProof | None = Field(default=None, description="required when the policy verifies approvers")


class HumanDecision(BaseModel):
    """What an update handler returns: the state after the decision."""

    incident_id: str
    state: IncidentState
    message: str


# --- activities ------------------------------------------------------------------


class ActionBounds(BaseModel):
    """Guardrails the activity enforces again, so a bad request cannot exceed them."""

    min_replicas: int = 1
    max_replicas: int = 10
    scale_up_max_factor: float = 3.0
    scale_down_min_factor: float = 0.5
    memory_factor: float = 1.5
    memory_cap_bytes: int = 2 * 2**30


class ActionRequest(BaseModel):
    """A remediation to apply, exactly once per ``idempotency_key``.

    ``params`` is the plain mapping workflow histories carry; the activity reads it through
    `typed_params` (the action's model in `zerotouch.action_params`), which raises pydantic's
    ValidationError for parameters the action does not take.
    """

    action: ActionName
    namespace: str
    name: str = Field(description="deployment name (or job/database reference for other actions)")
    pod: str | None = None
    params: dict[str, float | int | str] = Field(default_factory=dict)
    idempotency_key: str
    incident_id: str
    bounds: ActionBounds = Field(default_factory=ActionBounds)
    job_template: dict[str, object] | None = None

    @property
    def typed_params(self) -> ActionParams:
        return parse_params(self.action, self.params)


class ActionResult(BaseModel):
    applied: bool
    already_applied: bool = False
    detail: str
    before: dict[str, object] = Field(default_factory=dict)
    after: dict[str, object] = Field(default_factory=dict)


class RolloutCheck(BaseModel):
    namespace: str
    deployment: str
    hold_for_seconds: float = 10.0
    timeout_seconds: float = 180.0
    poll_seconds: float = 1.0


class RolloutStatus(BaseModel):
    healthy: bool
    desired: int = 0
    available: int = 0
    updated: int = 0
    detail: str = ""


class SymptomCheck(BaseModel):
    """Does the deployment show what the alert claims (`Runbook.confirm.pods`)?"""

    namespace: str
    deployment: str
    symptom: SymptomKind
    window_seconds: float = 900.0


class SymptomReport(BaseModel):
    present: bool
    detail: str = ""


class ClusterUsageRequest(BaseModel):
    """What the budget check needs to know about the cluster (nothing to ask yet)."""


class ClusterUsage(BaseModel):
    nodes: int = Field(ge=0)


class PromQLCheck(BaseModel):
    expression: str
    hold_for_seconds: float = 10.0
    timeout_seconds: float = 180.0
    poll_seconds: float = 2.0


class PromQLResult(BaseModel):
    holds: bool
    samples: int = 0
    detail: str = ""


class Notification(BaseModel):
    channel: str
    incident_id: str
    severity: Severity | None = None
    summary: str
    text: str = ""
    event: Literal["trigger", "resolve"] = "trigger"
    destination: Channel | None = Field(default=None, description="from the policy's channels")


class NotificationResult(BaseModel):
    delivered: bool
    detail: str = ""


class PolicyRequest(BaseModel):
    path: str | None = Field(default=None, description="default: $ZEROTOUCH_POLICY or the shipped policy")


__all__ = ["AlertEvent"]
