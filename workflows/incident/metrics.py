"""What an incident counts and times, through the workflow's metric meter.

Temporal does not record workflow metrics while replaying, so a worker restart
does not count an incident twice. Workers export them with the SDK's own metrics
(see `zerotouch.telemetry`); the names live in `zerotouch.metric_names`.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch import metric_names as names

# Timeline actors that are not people: anything else in the timeline is a human step.
MACHINE_ACTORS = frozenset({"zerotouch", "alertmanager"})


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _count(name: str, description: str, attributes: dict[str, str] | None = None) -> None:
    meter = workflow.metric_meter()
    counter = meter.create_counter(name, description)
    counter.add(1, attributes or {})


def _observe(name: str, description: str, seconds: float, attributes: dict[str, str] | None = None) -> None:
    meter = workflow.metric_meter()
    histogram = meter.create_histogram_float(name, description, unit="s")
    histogram.record(seconds, attributes or {})


def alert_deduplicated() -> None:
    _count(names.ALERTS_DEDUPLICATED, "repeat deliveries of an alert already firing, absorbed")


def alert_suppressed(reason: str) -> None:
    _count(names.ALERTS_SUPPRESSED, "alerts absorbed without a new incident", {"reason": reason})


def incident_opened(severity: str, runbook: str, alert_started: datetime | None, detected: datetime | None) -> None:
    _count(names.INCIDENTS_OPENED, "incidents opened", {"severity": severity, "runbook": runbook})
    seconds = _seconds_between(alert_started, detected)
    if seconds is not None:
        _observe(names.MTTD_SECONDS, "alert startsAt to incident opened", seconds)


def incident_closed(outcome: str, human_steps: bool) -> None:
    handled_by = "human" if human_steps else "automation"
    _count(names.INCIDENTS_CLOSED, "incidents closed", {"outcome": outcome, "handled_by": handled_by})


def recovered(alert_started: datetime | None, recovered_at: datetime | None, human_steps: bool) -> None:
    seconds = _seconds_between(alert_started, recovered_at)
    if seconds is not None:
        handled_by = "human" if human_steps else "automation"
        _observe(names.MTTR_SECONDS, "alert startsAt to verified recovery", seconds, {"handled_by": handled_by})


def action(name: str, result: str) -> None:
    _count(names.ACTIONS, "remediation actions by result", {"action": name, "result": result})


def approval_requested() -> None:
    _count(names.APPROVALS_REQUESTED, "approvals asked of humans")


def approval_decided(decision: str, requested_at: datetime) -> None:
    _count(names.APPROVALS_DECIDED, "approvals that ended, by how", {"decision": decision})
    seconds = _seconds_between(requested_at, workflow.now())
    if seconds is not None:
        _observe(names.APPROVAL_WAIT_SECONDS, "approval requested to decided", seconds, {"decision": decision})
