"""Incident statuses shaped like the ones IncidentWorkflow returns (same timeline kinds, actors, messages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from zerotouch.ledger_models import LedgerEntryInput, Outcome
from zerotouch.models import ActionRecord, IncidentStatus, TimelineEntry

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "s3cr3tTokenValue9876543210ABCDEFxyz"
BEARER = "Bearer abcDEF123456789xyzQRS"
DB_URL = "postgresql://admin:hunter2pw@db.internal:5432/orders"
EMAIL = "jane.doe@example.com"
SECRETS = (TOKEN, "abcDEF123456789xyzQRS", "hunter2pw", "admin:hunter2pw", EMAIL, "oncall-lead@example.com")
LABELS = {"alertname": "HighErrorRate", "namespace": "shop", "deployment": "checkout", "severity": "high",
          "api_token": TOKEN, "owner": EMAIL}


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _entry(seconds: float, kind: str, message: str, actor: str = "zerotouch") -> TimelineEntry:
    return TimelineEntry(at=_at(seconds), kind=kind, message=message, actor=actor)


def _action(seconds: float, attempt: int, outcome: str, detail: str) -> ActionRecord:
    return ActionRecord(step=0, attempt=attempt, action="restart_deployment", target="shop/checkout",
                        idempotency_key=f"inc-1/run/{attempt}", outcome=outcome, detail=detail, at=_at(seconds))


def _status(incident_id: str, state: str, timeline: list[TimelineEntry], actions: list[ActionRecord],
            **extra: object) -> IncidentStatus:
    return IncidentStatus.model_validate({
        "incident_id": incident_id, "state": state, "severity": "P2", "runbook": "restart-on-errors",
        "confidence": 0.9, "service": "checkout", "target": "shop/checkout", "attempts": len(actions),
        "alerts_received": 1, "detected_at": _at(30), "labels": LABELS, "timeline": timeline,
        "actions": actions, **extra,
    })


def _opening(start: float = 0) -> list[TimelineEntry]:
    return [
        _entry(start + 30, "detected", f"HighErrorRate firing since {T0.isoformat()}", "alertmanager"),
        _entry(start + 31, "triage", "severity P2; runbook restart-on-errors (confidence 0.90); target shop/checkout"),
    ]


def resolved(incident_id: str = "inc-resolved", recover_after: float = 120) -> IncidentStatus:
    timeline = [
        *_opening(),
        _entry(32, "grant", "granted by the Governor (within guardrails)"),
        _entry(33, "action", "attempt 1: restart_deployment on shop/checkout"),
        _entry(40, "action", f"restart_deployment applied: restarted; probe used {BEARER} against {DB_URL}"),
        _entry(recover_after - 1, "verification", "verified: 3/3 replicas available for 10s"),
        _entry(recover_after, "resolution", "recovery verified"),
        _entry(recover_after + 600, "resolution", "closed after a quiet cooldown of 10m"),
    ]
    actions = [_action(40, 1, "applied", f"restarted; probe used {BEARER} against {DB_URL}")]
    return _status(incident_id, "resolved", timeline, actions, resolved_at=_at(recover_after))


def escalated(incident_id: str = "inc-escalated") -> IncidentStatus:
    reason = "recovery failed 2 times (verification failed after restart_deployment: 1/3 available)"
    timeline = [
        *_opening(),
        _entry(32, "grant", "target cooldown: shop/checkout acted on 20s ago; asking again in 4m40s"),
        _entry(312, "grant", "granted by the Governor (within guardrails)"),
        _entry(313, "action", "attempt 1: restart_deployment on shop/checkout"),
        _entry(320, "action", "restart_deployment applied: restarted"),
        _entry(500, "verification", "not verified: 1/3 available"),
        _entry(501, "action", "retrying after a cooldown of 1m"),
        _entry(561, "grant", "the Governor refused (breaker_open): runbook restart-on-errors failed 3 times"),
        _entry(562, "escalation", f"escalated and frozen: {reason}"),
        _entry(562, "approval", f"approval requested for one more attempt of runbook restart-on-errors: {reason}"),
        _entry(563, "escalation", f"could not notify slack: 401 for Authorization: {BEARER}"),
    ]
    actions = [_action(320, 1, "applied", "restarted")]
    return _status(incident_id, "escalated", timeline, actions, frozen=True)


def aborted(incident_id: str = "inc-aborted") -> IncidentStatus:
    timeline = [
        *_opening(),
        _entry(32, "approval", "approval requested for restart_deployment: risk class needs approval"),
        _entry(90, "abort", "aborted: wrong target, ask oncall-lead@example.com", "alice"),
    ]
    return _status(incident_id, "aborted", timeline, [])


def entry(
    status: IncidentStatus, outcome: Outcome, run_id: str = "run-1", closed_after: float = 900
) -> LedgerEntryInput:
    return LedgerEntryInput(status=status, run_id=run_id, outcome=outcome, first_alert_starts_at=T0,
                            user_impact="some users see errors or delays", closed_at=_at(closed_after))
