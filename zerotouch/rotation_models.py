"""What the rotation workflow and its activities exchange: references and versions, never a credential.

A step names the rotation, its Secret and target (references only) and the rotation's token; the
activity reads or generates the credential itself, writes it where it belongs and returns what
can be shown to anyone: versions, ages, login names, provider key ids, counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zerotouch.rotations import SecretRef, Target

TOKEN_PATTERN = r"^r[0-9a-f]{12}$"  # noqa: S105 (a version id, not a credential)

Stage = Literal["idle", "pending", "set", "tested", "finished", "moved", "revoked", "rolled_back"]
"""Where a Secret's rotation stands, as its annotations say:
pending (a new credential generated) → set (the target accepts it) → tested (a login with it worked)
→ finished (it is current, the old one previous) → moved (the consumers run on it)
→ revoked (the old one no longer works). rolled_back: the previous credential is current again."""


RotationOutcome = Literal["rotated", "rolled_back", "failed", "aborted", "taken_over", "not_approved", "refused",
                          "revoke_held", "planned"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Version(_Model):
    """One credential version, as anyone may see it."""

    version: str = Field(description="the token of the rotation that made it ('initial' for one found in place)")
    since: datetime | None = None
    login: str = Field(default="", description="the login name (PostgreSQL role, MongoDB user, OAuth client id)")
    key_id: str = Field(default="", description="the provider's id of an OAuth client secret")


class RotationView(_Model):
    """A Secret's rotation state, read from its annotations; no data values."""

    secret: SecretRef
    exists: bool = True
    stage: Stage = "idle"
    current: Version | None = None
    pending: Version | None = None
    previous: Version | None = None
    previous_revoked: bool = False
    last_verified: datetime | None = None
    resource_version: str = ""


class RotationStep(_Model):
    """One idempotent step of one rotation: the same token repeats the same step with the same credential."""

    rotation: str
    secret: SecretRef
    target: Target
    token: str = Field(pattern=TOKEN_PATTERN)
    at: datetime = Field(description="workflow time, recorded in the Secret's annotations")


class StepResult(_Model):
    view: RotationView
    changed: bool = Field(description="False when the step had already been done (a retry after a crash)")
    detail: str = ""


class StageMark(_Model):
    """Record a stage the workflow has proven (tested, moved, revoked, verified) in the Secret."""

    step: RotationStep
    stage: Stage
    verified: bool = Field(default=False, description="also stamp last-verified")


class Consumer(_Model):
    deployment: str
    via: list[str] = Field(description="how its pod template reads the Secret: env, envFrom, volume, projected")


class ConsumerList(_Model):
    secret: SecretRef
    consumers: list[Consumer] = Field(default_factory=list)


class ConsumerRollout(_Model):
    """Restart these Deployments onto ``version`` (a pod-template annotation: idempotent per version)."""

    secret: SecretRef
    deployments: list[str]
    version: str


class RolledOut(_Model):
    changed: list[str] = Field(default_factory=list, description="deployments whose template changed now")
    unchanged: list[str] = Field(default_factory=list, description="already on this version")


class CredentialUse(_Model):
    """Whether a login still has sessions (PostgreSQL: pg_stat_activity); not measurable everywhere."""

    login: str
    sessions: int = 0
    measurable: bool = True
    detail: str = ""


class RotationRecord(_Model):
    """A finished rotation for the ledger: who, what, when, how it ended; references only."""

    rotation: str
    secret: SecretRef
    kind: str
    workflow_id: str
    run_id: str
    token: str
    outcome: RotationOutcome
    requested_by: str
    approved_by: str = ""
    reason: str = ""
    started_at: datetime
    finished_at: datetime
    consumers: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list, description="timeline lines, already free of credentials")


# --- steering and watching a rotation -------------------------------------------------------------------------


class RollbackInput(_Model):
    """Put the previous credential back as current (before the old one is revoked)."""

    by: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


class RotationApproval(_Model):
    """The approval a rotation waits for: the plan a human approves, until when."""

    request_id: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    plan: list[str]


class RotationEntry(_Model):
    at: datetime
    kind: str
    message: str
    actor: str = "zerotouch"


class RotationStatus(_Model):
    """The `status` query: where the rotation stands, what it waits for, what happened."""

    rotation: str
    secret: SecretRef
    kind: str
    token: str
    action: str = "rotate"
    state: Literal["starting", "awaiting_approval", "waiting_for_governor", "rotating", "verifying",
                   "grace", "rolling_back", "done"] = "starting"
    stage: Stage = "idle"
    outcome: str = ""
    requested_by: str = ""
    approved_by: str = ""
    owner: str = ""
    consumers: list[str] = Field(default_factory=list)
    plan: list[str] = Field(default_factory=list)
    pending_approval: RotationApproval | None = None
    timeline: list[RotationEntry] = Field(default_factory=list)


class RotationResult(_Model):
    """What a SecretRotationWorkflow returns."""

    rotation: str
    token: str
    outcome: RotationOutcome
    detail: str = ""
