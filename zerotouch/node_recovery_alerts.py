"""A node recovery that was refused or failed, as an alert: it opens (or joins) the node's incident.

The same path as a failed rotation or backup: the workflow builds the alert (pure) and hands it to the
`forward_alerts` activity, so the incident is triaged, escalated and recorded like any other. Its name
is not one of recovery.nodes.alerts, so the relay never turns an escalation into another recovery.
"""

from __future__ import annotations

from datetime import datetime

from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for

NODE_RECOVERY_ALERT = "ZerotouchNodeRecoveryEscalated"
NODE_LABEL = "node"
ANNOTATION_LIMIT = 2000


def node_event(node: str, workflow_id: str, *, summary: str, evidence: str, at: datetime) -> AlertEvent:
    labels = {"alertname": NODE_RECOVERY_ALERT, "severity": "critical", NODE_LABEL: node, "service": f"node-{node}"}
    return AlertEvent(
        fingerprint=fingerprint_of(labels), status="firing", labels=labels,
        annotations={"summary": summary[:ANNOTATION_LIMIT], "description": evidence[:ANNOTATION_LIMIT],
                     "recovery_workflow": workflow_id},
        starts_at=at, ends_at=None, received_at=at, source="zerotouch-recovery",
    )


def incident_for(event: AlertEvent, group_by: list[str], cluster: str = "") -> str:
    return incident_id_for(event, [*group_by, NODE_LABEL], cluster)
