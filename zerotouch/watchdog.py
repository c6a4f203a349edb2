"""The policy's ``watchdog``: the checks it pulls when no alert fires, and Alertmanager's silence (WatchdogWorkflow).

Each check stands for one alert rule: a PromQL query and a threshold, named after the alert the
matching stock kube-prometheus (or shipped zerotouch) rule fires. A series that crosses the
threshold becomes the alert that rule would have sent, with the same labels (the series' labels,
the rule's static labels, ``alertname``), hence the same incident and the same fingerprint: a
watchdog finding and Alertmanager's alert for one problem are one incident, never two actions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerotouch.alerts import AlertEvent
from zerotouch.durations import Duration
from zerotouch.runbooks import PolicyModel

WATCHDOG_WORKFLOW: Final = "WatchdogWorkflow"
WATCHDOG_SOURCE: Final = "watchdog"  # an AlertEvent's `source`: how the incident learnt of it
SILENCE_PAGE_ID: Final = "watchdog-alertmanager-silent"  # the page's dedup key (PagerDuty's dedup_key)
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
CheckKind = Literal["promql", "postgres_connections"]
_CHECK_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_REFERENCE = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class WatchdogCheck(PolicyModel):
    """One check: the alert a rule would fire, found by pulling instead of waiting for Alertmanager."""

    enabled: bool = True
    alertname: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                           description="the alert the matching Prometheus rule fires: the incident key")
    kind: CheckKind = Field(default="promql", description="promql, or postgres_connections (pg_stat_activity "
                                                          "read directly where no postgres_exporter runs)")
    query: str = Field(default="", max_length=4000,
                       description="promql: the rule's expression without its comparison; every series crossing "
                                   "the threshold is a finding")
    op: Comparison = ">"
    threshold: float | None = Field(default=None, description="promql: None = `query` is the whole condition; "
                                                              "postgres_connections: a fraction of max_connections")
    connection: str | None = Field(default=None, pattern=_REFERENCE,
                                   description="postgres_connections: the connection reference (data worker DSN)")
    labels: dict[str, str] = Field(default_factory=dict, description="the rule's static labels (severity, ...); "
                                                                     "postgres_connections: the alert's labels")

    @model_validator(mode="after")
    def _complete(self) -> WatchdogCheck:
        if self.kind == "promql" and not self.query.strip():
            raise ValueError("a promql check needs `query`")
        if self.kind == "postgres_connections" and (self.connection is None or self.threshold is None):
            raise ValueError("a postgres_connections check needs `connection` and `threshold` (e.g. 0.85)")
        return self

    def expression(self) -> str:
        """What Prometheus is asked: the query, filtered by the threshold as an alert rule filters."""
        return self.query if self.threshold is None else f"({self.query}) {self.op} {self.threshold:g}"


_POD_TO_DEPLOYMENT = '"deployment", "$1", "pod", "^(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$"'
_KSM = 'job="kube-state-metrics"'
# The alerts, expressions and labels of the rules they stand for: kube-prometheus's (deploy/prometheus/
# kube-prometheus) where it has one, else deploy/prometheus/rules/zerotouch.rules.yml. Range windows
# do the debouncing a rule's `for:` does; a point-in-time check has no `for:`.
DEFAULT_CHECKS: Final[dict[str, dict[str, Any]]] = {
    # The seed's 15k; any consumer-lag metric works (the query is the policy's).
    "consumer-lag": {"alertname": "KafkaConsumerLagHigh", "threshold": 15000, "labels": {"severity": "warning"},
                     "query": "max by (namespace, deployment, consumergroup) (sum by (namespace, deployment, "
                              "consumergroup, topic) (kafka_consumergroup_lag))"},
    # postgres_exporter's series; without an exporter use kind postgres_connections (README).
    "postgres-connections": {"alertname": "PostgresConnectionsHigh", "threshold": 0.85,
                             "labels": {"severity": "warning"},
                             "query": "label_replace(sum by (namespace, service) (pg_stat_activity_count) / on "
                                      "(namespace, service) max by (namespace, service) "
                                      '(pg_settings_max_connections), "deployment", "$1", "service", "(.+)")'},
    "oom-kills": {"alertname": "KubePodOOMKilled", "threshold": 0, "labels": {"severity": "critical"},
                  "query": "label_replace(max by (namespace, pod, container) (kube_pod_container_status_last_"
                           'terminated_reason{reason="OOMKilled"} == 1) and on (namespace, pod, container) '
                           f"(increase(kube_pod_container_status_restarts_total[10m]) > 0), {_POD_TO_DEPLOYMENT})"},
    "crash-loops": {"alertname": "KubePodCrashLooping", "op": ">=", "threshold": 1, "labels": {"severity": "warning"},
                    "query": "max_over_time(kube_pod_container_status_waiting_reason"
                             f'{{reason="CrashLoopBackOff", {_KSM}}}[5m])'},
    # Restarting without being caught in CrashLoopBackOff at the scrape: the same problem, the same incident.
    "restart-loops": {"alertname": "KubePodCrashLooping", "op": ">=", "threshold": 3,
                      "labels": {"severity": "warning"},
                      "query": f"increase(kube_pod_container_status_restarts_total{{{_KSM}}}[15m])"},
    "disk": {"alertname": "DiskSpaceHigh", "threshold": 0.85, "labels": {"severity": "warning"},
             "query": "max by (namespace, deployment, persistentvolumeclaim) (kubelet_volume_stats_used_bytes "
                      "/ on (namespace, deployment, persistentvolumeclaim) (kubelet_volume_stats_capacity_bytes > 0))"},
    # Progressing=False only after the Deployment's progressDeadlineSeconds: the deadline is the debounce.
    "stuck-rollouts": {"alertname": "KubeDeploymentRolloutStuck", "op": "!=", "threshold": 0,
                       "labels": {"severity": "warning"},
                       "query": f'kube_deployment_status_condition{{condition="Progressing", status="false",{_KSM}}}'},
    # Off by default: every rollout mismatches for a moment, and a point-in-time check has no `for: 15m`.
    "generation-mismatch": {"enabled": False, "alertname": "KubeDeploymentGenerationMismatch",
                            "labels": {"severity": "warning"},
                            "query": f"kube_deployment_status_observed_generation{{{_KSM}}} != "
                                     f"kube_deployment_metadata_generation{{{_KSM}}}"},
}
# Alertmanager's repeat_interval in deploy/alertmanager/alertmanager.yml (1h) plus its group_interval
# (30s) rounded up: the always-firing Watchdog alert reaches the relay at least this often.
DEFAULT_SILENCE_AFTER: Final = timedelta(hours=1, minutes=5)


class WatchdogPolicy(PolicyModel):
    """Checks the watchdog runs each cycle, and how long Alertmanager may stay silent."""

    checks: dict[str, WatchdogCheck] = Field(
        default_factory=lambda: {name: WatchdogCheck.model_validate(spec) for name, spec in DEFAULT_CHECKS.items()},
        description="by name; a shipped check's fields can be overridden (`crash-loops: {enabled: false}`)",
    )
    max_findings_per_check: int = Field(default=50, ge=1, le=1000,
                                        description="a query matching more series opens at most this many alerts")
    relay_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$",
                                  description="the relay whose /metrics tells when Alertmanager last delivered; "
                                              "unset: silence is not watched")
    silence_after: Duration = Field(default=DEFAULT_SILENCE_AFTER,
                                    description="page when the relay has received nothing for longer")
    page: list[str] = Field(default_factory=list,
                            description="channels paged on silence; empty: the P0 escalation's, else dashboard")

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        """A shipped check named in the policy is overridden field by field, not replaced."""
        if not isinstance(data, dict) or not isinstance(data.get("checks"), dict):
            return data
        merged: dict[str, Any] = {name: dict(spec) for name, spec in DEFAULT_CHECKS.items()}
        for name, spec in data["checks"].items():
            if isinstance(spec, WatchdogCheck):
                spec = spec.model_dump(exclude_unset=False)
            merged[name] = {**merged.get(name, {}), **spec} if isinstance(spec, dict) else spec
        return {**data, "checks": merged}

    @field_validator("checks")
    @classmethod
    def _names(cls, value: dict[str, WatchdogCheck]) -> dict[str, WatchdogCheck]:
        bad = [name for name in value if not re.match(_CHECK_NAME, name)]
        if bad:
            raise ValueError(f"check names are lower-case words joined by '-': {bad}")
        return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WatchdogArgs(_Model):
    """The arguments of WatchdogWorkflow (a schedule's `arguments:`)."""

    checks: list[str] | None = Field(default=None, description="names in watchdog.checks; default (null): every "
                                                                "enabled one; []: none (only the silence)")
    silence: bool = Field(default=True, description="also watch Alertmanager's silence (needs watchdog.relay_url)")


class WatchdogInput(_Model):
    schedule: str = Field(default="", description="the schedule's name; empty when started by hand")
    cluster: str = ""
    arguments: WatchdogArgs = Field(default_factory=WatchdogArgs)


class CheckRequest(_Model):
    name: str
    check: WatchdogCheck
    limit: int = 50


class Series(_Model):
    labels: dict[str, str]
    value: float


class CheckReading(_Model):
    """What one check found: the series past its threshold, how many PromQL queries it took, how long."""

    series: list[Series] = Field(default_factory=list)
    truncated: int = Field(default=0, description="series beyond max_findings_per_check, left out")
    queries: int = 0
    seconds: float = 0.0


class ConnectionReading(BaseModel):
    """The data worker's get_connection_usage answer (only the fields the watchdog reads)."""

    used: int
    max: int
    percent: float


class IncidentDelivery(_Model):
    """Findings for the relay's path: each event to the incident the relay would give it."""

    cluster: str = ""
    events: list[tuple[str, AlertEvent]] = Field(description="(incident id, event)")


class RelayProbe(_Model):
    relay_url: str


class RelayReading(_Model):
    last_delivery: float = Field(description="unix time of the last webhook the relay accepted (or its start)")
    read_at: float = Field(description="the worker's clock when it read it")

    @property
    def silent_seconds(self) -> float:
        return max(0.0, self.read_at - self.last_delivery)


class CheckReport(_Model):
    name: str
    alertname: str
    kind: CheckKind
    findings: int = 0
    truncated: int = 0
    queries: int = 0
    seconds: float = 0.0
    error: str = ""


class Finding(_Model):
    """One series past a threshold, as the alert it became and the incident that alert went to."""

    check: str
    incident_id: str
    fingerprint: str
    value: float
    labels: dict[str, str]


class SilenceReport(_Model):
    last_delivery: datetime | None = None
    silent_seconds: float = 0.0
    silent: bool = False
    paged: list[str] = Field(default_factory=list, description="channels paged this cycle")
    episode: float | None = Field(default=None, description="the last delivery the current silence started after "
                                                            "(paged once per episode)")
    error: str = ""


class WatchdogResult(_Model):
    """One cycle: what ran, what it found, where the findings went, and what it cost."""

    schedule: str = ""
    started_at: datetime
    finished_at: datetime
    seconds: float
    checks: list[CheckReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    incidents: list[str] = Field(default_factory=list, description="incident ids told a finding")
    queries: int = 0
    silence: SilenceReport | None = None


def alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (Prometheus' model.LabelSet.Fingerprint, FNV-1a 64)."""
    digest = 14695981039346656037
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                digest = ((digest ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def finding_event(check: WatchdogCheck, series_labels: dict[str, str], now: datetime) -> AlertEvent:
    """The alert the check's rule would send for one series: its labels minus ``__name__`` (as Prometheus
    drops it), the rule's labels over them, ``alertname`` last; Alertmanager's fingerprint of the result."""
    labels = {k: v for k, v in series_labels.items() if k != "__name__"}
    labels.update(check.labels)
    labels["alertname"] = check.alertname
    return AlertEvent(fingerprint=alertmanager_fingerprint(labels), status="firing", labels=labels,
                      starts_at=now, received_at=now, source=WATCHDOG_SOURCE)


def postgres_series(check: WatchdogCheck, usage: ConnectionReading) -> list[Series]:
    """A postgres_connections check's finding, if usage crossed the threshold (a fraction of max_connections)."""
    fraction = usage.used / usage.max if usage.max else 0.0
    threshold = check.threshold if check.threshold is not None else 1.0
    crossed = {">": fraction > threshold, ">=": fraction >= threshold, "<": fraction < threshold,
               "<=": fraction <= threshold, "==": fraction == threshold, "!=": fraction != threshold}[check.op]
    return [Series(labels={}, value=fraction)] if crossed else []


def silence_episode(reading: RelayReading, silence_after: timedelta, paged_episode: float | None) -> tuple[bool, bool]:
    """(silent, page now): silent past ``silence_after``; paged once per episode, keyed by its last delivery."""
    silent = reading.silent_seconds > silence_after.total_seconds()
    return silent, silent and paged_episode != reading.last_delivery


def epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)

