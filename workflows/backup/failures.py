"""Telling the incident path about a backup target's failures, and about its recovery."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.backup_alerts import failure_event, incident_for
    from zerotouch.backups import BackupTarget
    from zerotouch.policy import Policy

from workflows.backup import calls


async def report_failure(policy: Policy, target: BackupTarget, *, alertname: str, summary: str, evidence: str,
                         cluster: str, extra: dict[str, str] | None = None) -> str:
    """Open (or join) the target's incident for ``alertname``; its ID."""
    event = failure_event(target, alertname=alertname, summary=summary, evidence=evidence, at=workflow.now(),
                          extra=extra)
    incident_id = incident_for(event, policy.group_by, cluster)
    await calls.tell_incident(incident_id, event, cluster)
    return incident_id


async def clear_failure(policy: Policy, target: BackupTarget, *, alertname: str, summary: str, cluster: str) -> None:
    """Resolve the alert of an open incident for ``alertname``; opens nothing when none is open."""
    event = failure_event(target, alertname=alertname, summary=summary, evidence=summary, at=workflow.now(),
                          firing=False)
    await calls.tell_incident(incident_for(event, policy.group_by, cluster), event, cluster)
