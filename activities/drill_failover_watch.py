"""A postgres_primary_stop drill judged by the database failover's own `recovery_status`.

Resolved means the replica was promoted and a write committed on it (the failover's ``verify`` step
ran ok), whatever the rejoin of the old primary does after; escalated means the failover asks a
human (approval) or ended without promoting (refused, failed, aborted). Its actions are the failover's
acting steps, each on the declared pair or the consumers the policy lists for it.
"""

from __future__ import annotations

from typing import Any

from zerotouch.drills import POSTGRES_TARGET
from zerotouch.models import IncidentState, IncidentStatus
from zerotouch.recovery import RecoveryStatus, recovery_id
from zerotouch.recovery_databases import FAILOVER_ALERT

# The runbook a failover asks the Governor's grants under (workflows/db_failover/guard.py RUNBOOK),
# and the alert class it asks for: a failed drill costs that pair trust.
DATABASE_FAILOVER_RUNBOOK = "database-failover"
FAILOVERS = recovery_id("database") + "-"
ACTING_STEPS = ("fence", "promote", "repoint", "rejoin")  # what changes something; verify only reads back
_STATES: dict[str, IncidentState] = {
    "planning": "open", "running": "remediating", "planned": "open", "awaiting_approval": "escalated",
    "refused": "escalated", "failed": "escalated", "aborted": "escalated", "recovered": "resolved"}


def failover_as_incident(workflow_id: str, failover: RecoveryStatus) -> IncidentStatus:
    """A failover seen as the drill sees an incident: detected when it started, resolved once verified."""
    times = [event.at for event in failover.timeline]
    verified = next((e for e in failover.timeline if e.step == "verify" and e.outcome == "ok"), None)
    return IncidentStatus(
        incident_id=workflow_id, state="resolved" if verified else _STATES[failover.stage],
        runbook=DATABASE_FAILOVER_RUNBOOK, target=failover.target, detected_at=times[0] if times else None,
        resolved_at=verified.at if verified else None,
        labels={"alertname": FAILOVER_ALERT, "database": failover.target})


def failover_actions(failover: RecoveryStatus) -> list[dict[str, Any]]:
    """The failover's acting steps as the drill's action log has them (kind, resource, name, timestamp)."""
    return [{"seq": index, "kind": event.step, "resource": POSTGRES_TARGET, "namespace": "", "name": failover.target,
             "timestamp": event.at.timestamp()}
            for index, event in enumerate(failover.timeline) if event.step in ACTING_STEPS]
