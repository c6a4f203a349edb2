"""The policy: one YAML file that says what zerotouch may do, when, and who decides.

Parsed into pydantic models so that a bad file fails before any workflow sees it,
with an error naming the file, the path inside it and what is wrong.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from zerotouch.action_params import PARAMS_OF_ACTION
from zerotouch.alert_sources import AlertSources
from zerotouch.alertmanager_source import AlertmanagerSettings
from zerotouch.approval_policy import Approvals
from zerotouch.backups import BackupsPolicy
from zerotouch.drills import DrillsPolicy, check_drill_databases
from zerotouch.durations import Duration
from zerotouch.gdpr import GdprPolicy
from zerotouch.quantities import parse_memory
from zerotouch.recovery import RecoveryPolicy
from zerotouch.rotations import RotationsPolicy
from zerotouch.runbooks import (
    ACTION_PARAMS_ERROR,
    Matcher,
    PolicyModel,
    Runbook,
    Severity,
    Step,
)
from zerotouch.schedule_references import check_schedule_references
from zerotouch.schedules import ScheduleDeclaration
from zerotouch.watchdog import WatchdogPolicy

Mode = Literal["observe", "approve-all", "auto"]
Risk = Literal["auto", "approval", "never"]
SEVERITIES: tuple[Severity, ...] = ("P0", "P1", "P2", "P3", "P4")

# The classes the seeds exclude from zero-touch: they need a human unless pre-approved.
EXCLUDED_CLASSES = (
    "schema_change",
    "data_deletion",
    "security_policy",
    "credential_rotation",
    "customer_visible_config",
)

DEFAULT_RISK: dict[str, Risk] = {
    **dict.fromkeys(PARAMS_OF_ACTION, "auto"),  # every action, bounded by its parameters and the guardrails
    **{name: "approval" for name in EXCLUDED_CLASSES},
}


class SeverityRule(PolicyModel):
    match: Matcher
    severity: Severity


_DEFAULT_SEVERITY_MAP: dict[str, Severity] = {
    "page": "P0", "critical": "P1", "high": "P2", "warning": "P3", "info": "P4",
}


class SeverityPolicy(PolicyModel):
    label: str = "severity"
    map: dict[str, Severity] = Field(default_factory=lambda: dict(_DEFAULT_SEVERITY_MAP))
    default: Severity = "P3"
    rules: list[SeverityRule] = Field(default_factory=list, description="first match wins, before the label")


class Rung(PolicyModel):
    """One step of an escalation ladder."""

    after: Duration = timedelta(0)
    notify: list[str] = Field(min_length=1)
    when: Literal["unresolved", "failed"] = Field(
        default="unresolved",
        description="unresolved: fire if still open after `after`; failed: only once automation gave up",
    )


class Channel(PolicyModel):
    type: Literal["webhook", "slack", "pagerduty", "dashboard"]
    url: str | None = None
    url_env: str | None = Field(default=None, description="read the URL from this variable (keeps secrets out)")
    routing_key_env: str | None = None

    @model_validator(mode="after")
    def _has_destination(self) -> Channel:
        if self.type != "dashboard" and not (self.url or self.url_env):
            raise ValueError(f"a {self.type} channel needs url or url_env")
        return self


class Approvers(PolicyModel):
    names: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)

    def allows(self, name: str) -> bool:
        return name in self.names or any(name in members for members in self.groups.values())

    def everyone(self) -> list[str]:
        return sorted(set(self.names).union(*self.groups.values()))


class Guardrails(PolicyModel):
    """Limits the Governor holds across all incidents of a cluster."""

    target_cooldown: Duration = timedelta(minutes=5)
    global_rate_per_minute: int = Field(default=100, ge=1, description="actions per minute, all incidents")
    max_in_flight_per_namespace: int = Field(default=5, ge=1, description="blast radius")
    breaker_failures: int = Field(default=3, ge=1, description="failed verifications that open a runbook's breaker")
    breaker_window: Duration = timedelta(minutes=30)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    scale_up_max_factor: float = Field(default=3.0, ge=1.0, description="+200% at most")
    scale_down_min_factor: float = Field(default=0.5, gt=0.0, le=1.0, description="-50% at most")
    memory_factor: float = Field(default=1.5, gt=1.0, le=4.0)
    memory_cap: str = "2Gi"

    @field_validator("memory_cap")
    @classmethod
    def _memory(cls, value: str) -> str:
        parse_memory(value)
        return value


class EscalateWhen(PolicyModel):
    """The seeds' mandatory escalation conditions beyond failed recovery and low confidence."""

    data_consistency_actions: list[str] = Field(
        default_factory=list, description="actions that risk data consistency: never run unattended"
    )
    protected_services: list[str] = Field(
        default_factory=lambda: ["auth", "billing"],
        description="services whose incidents go to a human (matched on service/app/deployment/namespace)",
    )
    security_labels: dict[str, str] = Field(
        default_factory=lambda: {"security_incident": "*", "category": "security"},
        description="label=value that marks a security signal; '*' matches any value",
    )


class Budget(PolicyModel):
    """Projected monthly cost = nodes x cost_per_node + replicas x cost_per_replica."""

    monthly: float = Field(gt=0, description="monthly budget, e.g. 15 (EUR)")
    cost_per_node: float = Field(default=0.0, ge=0)
    cost_per_replica: float = Field(default=0.0, ge=0)
    notify_at: list[float] = Field(default_factory=lambda: [0.8, 0.9])
    block_at: float = Field(default=1.0, gt=0, description="refuse scale-ups from this fraction on")


class Trust(PolicyModel):
    """The prior of every runbook's record: a new runbook starts at successes/(successes+failures)."""

    prior_successes: float = Field(default=8.0, gt=0)
    prior_failures: float = Field(default=1.0, gt=0)


class JobTemplate(PolicyModel):
    image: str
    args: list[str] = Field(default_factory=list, description="container args; never run through a shell")
    active_deadline: Duration = timedelta(minutes=10)
    labels: dict[str, str] = Field(default_factory=dict)


_DEFAULT_USER_IMPACT: dict[Severity, str] = {
    "P0": "all users affected", "P1": "many users affected", "P2": "some users see errors or delays",
    "P3": "few users affected", "P4": "no user-visible impact",
}


class Policy(PolicyModel):
    """The whole policy file."""

    version: Literal[1] = 1
    mode: Mode = "auto"
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname", "namespace", "workload"],
        description="labels that make one incident; empty = one incident per alert fingerprint. `workload` is "
                    "derived: the workload the alert names, or the owner its pod's name points to",
    )
    alerts: AlertSources = Field(default_factory=AlertSources)
    resolution_cooldown: Duration = Field(default=timedelta(minutes=10))
    alertmanager: AlertmanagerSettings = Field(
        default_factory=AlertmanagerSettings,
        description="where a resolved incident confirms its alerts stopped before it closes",
    )
    confidence_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    severity: SeverityPolicy = Field(default_factory=SeverityPolicy)
    escalation: dict[Severity, list[Rung]] = Field(default_factory=dict)
    channels: dict[str, Channel] = Field(default_factory=lambda: {"dashboard": Channel(type="dashboard")})
    approvers: Approvers = Field(default_factory=Approvers)
    four_eyes: bool = Field(default=True, description="whoever requested an action may not approve it")
    approvals: Approvals = Field(
        default_factory=Approvals,
        description="how an approver's identity is established: asserted (default) or verified by SSH signatures",
    )
    risk: dict[str, Risk] = Field(default_factory=dict)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    budget: Budget | None = None
    escalate_when: EscalateWhen = Field(default_factory=EscalateWhen)
    user_impact: dict[Severity, str] = Field(
        default_factory=lambda: dict(_DEFAULT_USER_IMPACT),
        description="the user-impact estimate recorded in the ledger, by severity",
    )
    trust: Trust = Field(default_factory=Trust)
    preapproved_classes: list[str] = Field(
        default_factory=list, description="excluded classes (e.g. credential_rotation) that may run alone"
    )
    job_templates: dict[str, JobTemplate] = Field(default_factory=dict)
    runbooks: list[Runbook] = Field(default_factory=list)
    backups: BackupsPolicy = Field(default_factory=BackupsPolicy, description="backup targets and repository")
    rotations: RotationsPolicy = Field(default_factory=RotationsPolicy, description="credentials zerotouch rotates")
    gdpr: GdprPolicy = Field(default_factory=GdprPolicy, description="personal data: the data map, request periods")
    recovery: RecoveryPolicy = Field(
        default_factory=RecoveryPolicy, description="node, database and namespace recovery and their bounds",
    )
    drills: DrillsPolicy = Field(default_factory=DrillsPolicy, description="chaos and false-positive drills")
    watchdog: WatchdogPolicy = Field(
        default_factory=WatchdogPolicy, description="checks pulled when no alert fires; Alertmanager's silence",
    )
    schedules: list[ScheduleDeclaration] = Field(
        default_factory=list, description="Temporal Schedules `zerotouch schedules apply` keeps the server matching",
    )

    @model_validator(mode="after")
    def _references(self) -> Policy:
        check_schedule_references(self.schedules, job_templates=self.job_templates,
                                  backup_targets={t.name for t in self.backups.targets},
                                  rotations=self.rotations.secrets, watchdog_checks=self.watchdog.checks)
        check_drill_databases(self.drills, self.recovery.databases)
        names = [r.name for r in self.runbooks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"runbook names must be unique: {duplicates}")
        for severity, rungs in self.escalation.items():
            for rung in rungs:
                unknown = [c for c in rung.notify if c not in self.channels]
                if unknown:
                    raise ValueError(f"escalation.{severity}: unknown channel(s) {unknown}")
        unknown = [c for c in self.watchdog.page if c not in self.channels]
        if unknown:
            raise ValueError(f"watchdog.page: unknown channel(s) {unknown}")
        for runbook in self.runbooks:
            for step in runbook.steps:
                template = step.params.get("template")
                if step.action == "run_job" and template not in self.job_templates:
                    raise ValueError(f"runbook {runbook.name}: run_job template {template!r} not in job_templates")
        return self

    @model_validator(mode="after")
    def _approver_keys(self) -> Policy:
        self.approvals.check_against(self.approvers.everyone())
        return self

    def risk_of(self, step: Step) -> Risk:
        """How much a step may do alone: the step's class first, then its action."""
        key = step.risk_class or step.action
        if key in self.risk:
            return self.risk[key]
        if key in self.preapproved_classes:
            return "auto"
        return DEFAULT_RISK.get(key, "approval")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names file, path and problem."""


def _item(data: Any, key: Any) -> Any:
    try:
        return data[key]
    except (KeyError, IndexError, TypeError):
        return None


def _where(data: Any, loc: tuple[int | str, ...], error_type: str) -> str:
    """``runbooks.2.steps.0.params`` as ``runbook scale-on-overload step 1 (scale_deployment): params``."""
    if len(loc) >= 4 and loc[0] == "runbooks" and loc[2] == "steps" and isinstance(loc[3], int):
        runbook = _item(_item(data, "runbooks"), loc[1])
        step = _item(_item(runbook, "steps"), loc[3])
        name = _item(runbook, "name")
        action = _item(step, "action")
        where = f"runbook {name if isinstance(name, str) else f'#{loc[1]}'} step {loc[3] + 1}"
        if isinstance(action, str):
            where += f" ({action})"
        rest = ".".join(str(p) for p in loc[4:])
        if rest and not (error_type == ACTION_PARAMS_ERROR and rest == "params"):  # its message names the params
            where += f": {rest}"
        return where
    if len(loc) >= 2 and loc[0] == "schedules" and isinstance(loc[1], int):
        name = _item(_item(_item(data, "schedules"), loc[1]), "name")
        where = f"schedule {name if isinstance(name, str) else f'#{loc[1]}'}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{where}: {rest}" if rest else where
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    try:
        return Policy.model_validate(data if data is not None else {})
    except ValidationError as error:
        lines = [f"{source}: {_where(data, tuple(problem['loc']), problem['type'])}: {problem['msg']}"
                 for problem in error.errors()]
        raise PolicyError("\n".join(lines)) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{file}: cannot read policy: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"{file}: not valid YAML: {error}") from None
    policy = parse_policy(data, str(file))
    policy.approvals.warn_once(str(file))
    return policy


def policy_schema() -> dict[str, Any]:
    return Policy.model_json_schema()
