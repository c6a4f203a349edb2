"""Payloads of the GovernorWorkflow: its settings, the grant request and decision, human inputs, status.

Fields are added with defaults only, so a running Governor keeps decoding its input after
an upgrade (its book travels through continue-as-new as a payload).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from zerotouch.approval_proofs import ApprovalProof, IdentityMode
from zerotouch.durations import Duration
from zerotouch.node_lease_models import NodeLease
from zerotouch.policy import Mode, Risk
from zerotouch.recovery_nodes import parse_min_schedulable

GOVERNOR_WORKFLOW = "GovernorWorkflow"
GOVERNOR_ID_PREFIX = "governor-"
UPDATE_REQUEST_GRANT = "request_grant"
UPDATE_PAUSE = "pause"
UPDATE_RESUME = "resume"
UPDATE_SET_MODE = "set_mode"
UPDATE_CLOSE_BREAKER = "close_breaker"
UPDATE_SETTINGS = "update_settings"
# The error type of an update_settings refused because the settings are not the workers' policy.
SETTINGS_NOT_FROM_POLICY = "SettingsNotFromPolicy"
SIGNAL_REPORT_OUTCOME = "report_outcome"
SIGNAL_RECORD_DRILL_OUTCOME = "record_drill_outcome"
QUERY_GOVERNOR_STATUS = "status"

MAX_PAUSE_SECONDS = 24 * 3600.0


def governor_id(cluster: str) -> str:
    """One Governor per cluster scope; the default scope is ``governor-default``."""
    return f"{GOVERNOR_ID_PREFIX}{cluster or 'default'}"


class GovernorSettings(BaseModel):
    """The guardrails' numbers. Defaults follow the seeds (5 min per problem, ≤10 replicas, €4.50/node)."""

    target_cooldown: Duration = timedelta(minutes=5)
    global_rate_per_minute: int = Field(default=100, ge=1)
    max_in_flight_per_namespace: int = Field(default=5, ge=1)
    in_flight_timeout: Duration = Field(
        default=timedelta(minutes=30),
        description="a grant whose outcome never arrives stops counting against the blast radius after this",
    )
    breaker_failures: int = Field(default=3, ge=1)
    breaker_window: Duration = timedelta(minutes=30)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    scale_up_max_factor: float = Field(default=3.0, ge=1.0, description="+200% at most in one step")
    scale_down_min_factor: float = Field(default=0.5, gt=0.0, le=1.0, description="-50% at most in one step")
    monthly_budget: float | None = Field(default=None, gt=0, description="None: no budget check")
    cost_per_node: float = Field(default=4.50, ge=0)
    cost_per_replica: float = Field(default=0.0, ge=0)
    budget_notify_at: list[float] = Field(default_factory=lambda: [0.8, 0.9])
    budget_block_at: float = Field(default=1.0, gt=0)
    confidence_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    # Prior Beta(8, 1): mean 0.89, so a new runbook acts alone under the default threshold 0.8;
    # two verified failures with no success bring it to 8/11 = 0.73 and it needs approval.
    trust_prior_successes: float = Field(default=8.0, gt=0)
    trust_prior_failures: float = Field(default=1.0, gt=0)
    preapproved_classes: list[str] = Field(default_factory=list, description="excluded classes that may run alone")
    idempotency_window: Duration = Field(default=timedelta(hours=24), description="how long granted ids are kept")
    approvers: list[str] | None = Field(
        default=None,
        description="who may loosen a guardrail (resume, mode auto, close a breaker); None: anyone who names "
                    "themselves. Anyone may tighten one (pause, observe, approve-all).",
    )
    identity: IdentityMode = Field(
        default="asserted", description="verified: loosening needs a proof signed by one of the approver's keys",
    )
    approver_keys: dict[str, list[str]] = Field(
        default_factory=dict, description="approver → ssh-ed25519 public keys (the policy's approvals.keys)",
    )
    # The capacity budget (node leases, zerotouch.node_leases): the policy's recovery.nodes.
    node_min_schedulable: int | str = Field(default="51%", description="a count of nodes, or a share of all")
    node_max_concurrent: int = Field(default=1, ge=1, description="node leases held at once")
    node_lease_ttl: Duration = Field(default=timedelta(minutes=5), description="a lease not renewed lapses after")

    @field_validator("node_min_schedulable", mode="before")
    @classmethod
    def _min_schedulable(cls, value: int | str) -> int | str:
        return parse_min_schedulable(value)

    @model_validator(mode="after")
    def _consistent(self) -> GovernorSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        if any(not 0 < t < self.budget_block_at for t in self.budget_notify_at):
            raise ValueError("budget_notify_at thresholds must lie between 0 and budget_block_at")
        return self


class GrantRequest(BaseModel):
    """One question to the Governor: may this action run now?"""

    request_id: str = Field(min_length=1, max_length=256, description="idempotency key of this attempt")
    incident_id: str = ""
    runbook: str = Field(min_length=1)
    alert_class: str = Field(default="", description="usually the alertname")
    action: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    target: str = Field(default="", description="deployment (or other object) the action touches")
    risk_class: str | None = None
    risk: Risk = Field(default="auto", description="the policy's risk for this step")
    labels: dict[str, str] = Field(default_factory=dict)
    current_replicas: int | None = Field(default=None, ge=0)
    desired_replicas: int | None = Field(default=None, ge=0)
    current_nodes: int | None = Field(default=None, ge=0)
    projected_nodes: int | None = Field(default=None, ge=0, description="cluster node count after the action")
    approved_by: str | None = Field(default=None, min_length=1, description="set when a human approved it")
    approval_note: str = ""
    approval_proof: ApprovalProof | None = Field(
        default=None, description="the approver's signed proof; the Governor checks it when approvers are verified",
    )


DecisionCode = Literal[
    "granted", "observe", "paused", "approve_all", "excluded_class", "policy_approval", "circuit_open",
    "low_confidence", "forbidden", "cooldown", "rate_limit", "blast_radius", "replica_bounds", "scale_step", "budget",
    "unproven_approval",
]
# A refusal as the guardrails decide it: (code, reason, needs a human's approval, retry after seconds).
Refusal = tuple[DecisionCode, str, bool, float | None]


class GrantDecision(BaseModel):
    request_id: str
    granted: bool
    code: DecisionCode
    reason: str
    grant_id: str | None = None
    needs_approval: bool = False
    confidence: float = 0.0
    retry_after_seconds: float | None = None
    granted_replicas: int | None = Field(default=None, description="replicas to apply: the request clamped")
    notifications: list[str] = Field(default_factory=list)
    approved_by: str | None = None
    decided_at: datetime


class JournalEntry(BaseModel):
    at: datetime
    by: str
    what: str
    detail: str = ""


class PauseState(BaseModel):
    until: datetime
    by: str
    reason: str
    since: datetime


class GrantRecord(BaseModel):
    grant_id: str
    request_id: str
    incident_id: str = ""
    runbook: str
    alert_class: str
    namespace: str
    granted_at: datetime


class BreakerState(BaseModel):
    failures: list[datetime] = Field(default_factory=list)
    open: bool = False
    opened_at: datetime | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None


class TrustRecord(BaseModel):
    runbook: str
    alert_class: str
    successes: int = 0
    failures: int = 0


class GovernorBook(BaseModel):
    """Everything the Governor remembers; it travels through continue-as-new as one payload."""

    mode: Mode = "auto"
    pause: PauseState | None = None
    cooldowns: dict[str, datetime] = Field(default_factory=dict, description="action:namespace/target → granted at")
    recent_grants: list[datetime] = Field(default_factory=list, description="grant times, oldest first")
    in_flight: dict[str, GrantRecord] = Field(default_factory=dict)
    breakers: dict[str, BreakerState] = Field(default_factory=dict)
    trust: dict[str, TrustRecord] = Field(default_factory=dict)
    granted: dict[str, GrantDecision] = Field(default_factory=dict, description="request_id → grant, oldest first")
    budget_month: str = ""
    budget_notified: list[float] = Field(default_factory=list)
    last_projected_cost: float | None = None
    journal: list[JournalEntry] = Field(default_factory=list)
    spent_proofs: dict[str, datetime] = Field(
        default_factory=dict, description="digest of each used approval proof → its expiry (refused again until then)",
    )
    next_grant: int = 1
    requests_handled: int = 0
    node_leases: dict[str, NodeLease] = Field(default_factory=dict, description="node → its lease (capacity budget)")
    next_lease: int = 1
    drills_recorded: list[str] = Field(default_factory=list, description="drill run|trust key already counted")


class GovernorInput(BaseModel):
    """Input of the GovernorWorkflow; `book` is None on the first run and carried on continue-as-new."""

    settings: GovernorSettings = Field(default_factory=GovernorSettings)
    cluster: str = ""
    book: GovernorBook | None = None
    continue_as_new_after: int = Field(default=500, ge=1, description="handled requests per run")
    settings_from_policy: bool = Field(
        default=False,
        description="set by the Governor itself when it continues as new with settings read off the workers' "
                    "policy; honoured only on a continued run, so a client that starts a Governor cannot claim it",
    )


class OutcomeReport(BaseModel):
    grant_id: str = Field(min_length=1)
    verified: bool
    executed: bool = Field(default=True, description="False: nothing ran (aborted); release without judging")
    detail: str = ""


class DrillOutcomeReport(BaseModel):
    """A drill that exercised a runbook (no grant of its own): a failed one costs that runbook trust."""

    drill_id: str = Field(min_length=1, max_length=300, description="workflow/run: counted once")
    runbook: str = Field(min_length=1, max_length=200)
    alert_class: str = Field(default="", max_length=200)
    passed: bool
    detail: str = Field(default="", max_length=2000)


class PauseInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    duration_seconds: float = Field(gt=0, le=MAX_PAUSE_SECONDS)


class ResumeInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    note: str = ""
    proof: ApprovalProof | None = Field(default=None, description="required when the policy verifies approvers")


class ModeInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    mode: Mode
    reason: str = ""
    proof: ApprovalProof | None = Field(default=None, description="required for auto when approvers are verified")


class BreakerCloseInput(BaseModel):
    by: str = Field(min_length=1, max_length=128)
    runbook: str = Field(min_length=1)
    note: str = ""
    proof: ApprovalProof | None = Field(default=None, description="required when the policy verifies approvers")


class GovernorAck(BaseModel):
    """What a human update returns: one line saying what changed."""

    message: str


class TrustRow(BaseModel):
    runbook: str
    alert_class: str
    successes: int
    failures: int
    confidence: float
    level: Literal["auto", "approval"]


class BreakerRow(BaseModel):
    runbook: str
    open: bool
    recent_failures: int
    opened_at: datetime | None = None
    closed_by: str | None = None


class CooldownRow(BaseModel):
    key: str
    until: datetime


class BudgetRow(BaseModel):
    monthly: float | None
    projected: float | None
    percent: float | None
    notified: list[float] = Field(default_factory=list)


class GovernorStatus(BaseModel):
    mode: Mode
    paused_until: datetime | None = None
    paused_by: str | None = None
    pause_reason: str | None = None
    cooldowns: list[CooldownRow] = Field(default_factory=list)
    rate_used: int = 0
    rate_limit: int = 0
    in_flight: dict[str, int] = Field(default_factory=dict)
    breakers: list[BreakerRow] = Field(default_factory=list)
    trust: list[TrustRow] = Field(default_factory=list)
    budget: BudgetRow
    journal: list[JournalEntry] = Field(default_factory=list)
    requests_handled: int = 0
    node_leases: list[NodeLease] = Field(default_factory=list, description="leases in force (capacity budget)")
