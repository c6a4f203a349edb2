"""The DrillWorkflow's input, its activities' models, and its result (also what the ledger keeps)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from zerotouch.drills import Drill
from zerotouch.recovery_databases import DatabaseFailoverTarget

DRILL_WORKFLOW = "DrillWorkflow"
DRILL_LEDGER_KIND = "drill"
DrillOutcome = str  # auto_resolved | escalated | no_action | acted | undetected | unresolved | failed


def drill_workflow_id(name: str, started: datetime) -> str:
    return f"drill-{name}-{started.strftime('%Y%m%dT%H%M%SZ')}"


class DrillInput(BaseModel):
    name: str
    cluster: str = ""
    requested_by: str = ""
    drill: Drill | None = Field(default=None, description="pinned drill; default: the policy's of this name")


class DrillFault(BaseModel):
    """What to break (or undo) and where; idempotent: injecting twice replaces, removing twice is a no-op."""

    drill: Drill
    cluster: str = ""
    database: DatabaseFailoverTarget | None = Field(
        default=None, description="postgres_primary_stop: the policy's recovery.databases entry it stops")


class DrillInjection(BaseModel):
    injected_at: float = Field(description="epoch seconds, the sandbox's wall clock")
    actions_before: int = Field(default=0, description="the sandbox action log's last seq before injection")
    detail: str = ""


class DrillDelivery(BaseModel):
    drill: Drill
    cluster: str = ""
    resolved: bool = Field(default=False, description="deliver the alert's resolution instead")


class DrillDelivered(BaseModel):
    incident_ids: list[str] = Field(default_factory=list)
    deliveries: int = 0


class DrillWatch(BaseModel):
    drill: Drill
    cluster: str = ""
    injection: DrillInjection
    delivered: bool = Field(default=False, description="the drill delivered its alert (the relay named incidents)")
    incident_ids: list[str] = Field(default_factory=list, description="from delivery; else computed from labels")
    group_by: list[str] = Field(default_factory=list)


class ExercisedRunbook(BaseModel):
    """A runbook a drill's incident chose, and for which alert class: the Governor's trust key."""

    runbook: str
    alert_class: str = ""


class DrillObservation(BaseModel):
    outcome: DrillOutcome
    incident_ids: list[str] = Field(default_factory=list)
    detect_seconds: float | None = None
    first_action_seconds: float | None = None
    recover_seconds: float | None = None
    actions: list[str] = Field(default_factory=list, description="kind namespace/name of each sandbox action")
    outside_target: list[str] = Field(default_factory=list)
    exercised: list[ExercisedRunbook] = Field(default_factory=list, description="a failure costs these trust")
    detail: str = ""


class DrillResult(BaseModel):
    """One drill's run: what was broken, what followed, whether it met its expectation."""

    workflow_id: str
    run_id: str = ""
    name: str
    fault: str
    target: str
    expect: str
    outcome: DrillOutcome
    passed: bool
    severity_weight: float = 1.0
    delivered_alert: bool = Field(default=False, description="the drill delivered its alert (no Prometheus)")
    started_at: datetime
    finished_at: datetime
    detect_seconds: float | None = None
    first_action_seconds: float | None = None
    recover_seconds: float | None = None
    incident_ids: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    outside_target: list[str] = Field(default_factory=list)
    exercised: list[ExercisedRunbook] = Field(default_factory=list)
    cleaned_up: bool = False
    detail: str = ""
