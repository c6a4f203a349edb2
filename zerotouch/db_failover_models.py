"""What DatabaseFailoverWorkflow hands its activities and what they answer: one model in, one out.

Every step answers a `FailoverStepResult` with the roles and WAL positions it saw before and after,
so the ledger can show what each step changed. No DSN or password is ever part of these models.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .recovery_databases import DatabaseFailoverTarget


class FailoverStep(BaseModel):
    """One step of one failover: the policy's target (references only) and the run's idempotency token."""

    database: str
    target: DatabaseFailoverTarget
    token: str = Field(min_length=1, description="the run's key: a retried step finds its own earlier work")
    lag_bytes: int | None = Field(default=None, description="promote: the lag the workflow accepted")
    canary_until: datetime | None = Field(default=None, description="verify: canary rows up to the promotion")


class FailoverStepResult(BaseModel):
    """What a step found or did; ``ok`` False is a fact to act on (refuse, escalate), not a crash."""

    ok: bool
    detail: str = ""
    before: dict[str, str] = Field(default_factory=dict)  # roles, LSNs, addresses: never credentials
    after: dict[str, str] = Field(default_factory=dict)
    lag_bytes: int | None = None  # measure_replica_lag: None when it cannot be known


class FailoverStepRecord(BaseModel):
    at: datetime
    step: str
    outcome: str
    detail: str = ""
    before: dict[str, str] = Field(default_factory=dict)
    after: dict[str, str] = Field(default_factory=dict)


class DatabaseFailoverRecord(BaseModel):
    """A failover run as the ledger keeps it."""

    database: str
    workflow_id: str
    run_id: str
    stage: str
    outcome: str
    requested_by: str = ""
    approved_by: list[str] = Field(default_factory=list)
    reason: str = ""
    started_at: datetime
    finished_at: datetime
    plan: list[str] = Field(default_factory=list)
    steps: list[FailoverStepRecord] = Field(default_factory=list)
