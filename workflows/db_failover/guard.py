"""The Governor's word before a failover changes anything, and the incident when it is refused or fails.

Failovers share every operation's guardrails: the kill switch, observe mode, the global rate, the
cooldown per target and the policy's risk for `database_failover` (approval unless the policy says
otherwise). A refusal that passes by itself (rate, cooldown, a pause) is waited out a bounded number of times.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.policy import Policy
    from zerotouch.recovery_databases import FAILOVER_ALERT, GRANT_ACTION, RISK_CLASS

from workflows.db_failover import calls
from workflows.db_failover.state import FailoverRun
from workflows.grant_waits import until_settled

RUNBOOK = "database-failover"
DATABASE_LABEL = "database"
_MAX_ASKS = 30


async def ask_governor(run: FailoverRun, policy: Policy, *, approved: bool = False) -> GrantDecision:
    name = run.params.database

    async def ask(n: int) -> GrantDecision:
        request = GrantRequest(
            request_id=f"{run.token}-{'approved' if approved else 'ask'}-{n}",
            incident_id=workflow.info().workflow_id, runbook=RUNBOOK, alert_class=FAILOVER_ALERT,
            action=GRANT_ACTION, namespace=name, target=f"database/{name}", risk_class=RISK_CLASS,
            risk=policy.risk.get(RISK_CLASS, "approval"), labels={DATABASE_LABEL: name},
            approved_by=run.approved_by[-1] if approved and run.approved_by else None,
            approval_note=run.approval_note, approval_proof=run.approval_proof if approved else None)
        return await calls.request_grant(request, governor_settings(policy), run.params.cluster)

    return await until_settled(ask, max_asks=_MAX_ASKS, aborted=lambda: run.aborted_by is not None,
                               waiting=lambda d: run.note("governor", "waiting", d.reason))


async def escalate(run: FailoverRun, policy: Policy, summary: str, evidence: str) -> None:
    """Open (or join) the database's incident: a human must look, nothing more will be done here."""
    name, now = run.params.database, workflow.now()
    labels = {"alertname": FAILOVER_ALERT, "severity": "critical", DATABASE_LABEL: name, "service": name}
    event = AlertEvent(fingerprint=fingerprint_of(labels), status="firing", labels=labels,
                       annotations={"summary": summary[:2000], "description": evidence[:2000]},
                       starts_at=now, received_at=now, source="zerotouch-recovery")
    incident_id = incident_id_for(event, [*policy.group_by, DATABASE_LABEL], run.params.cluster)
    await calls.tell_incident(incident_id, event, run.params.cluster)
    run.status.incident_id = incident_id
    run.note("escalate", "ok", f"incident {incident_id}: {summary}")
