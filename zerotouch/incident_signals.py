"""Telling an incident about one alert: what the relay does per alert, and a merge per forwarded alert.

A firing alert starts the incident if it is not running (signal-with-start, joining the running one
otherwise); a resolved alert never opens one. Both the relay (`starters/relay/deliver.py`) and an
incident that hands its alerts to another (`activities/incidents.py`) go through here.
"""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from zerotouch.alerts import AlertEvent
from zerotouch.models import IncidentInput
from zerotouch.names import INCIDENT_WORKFLOW, SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED, queue_for
from zerotouch.workloads import workload_key

log = logging.getLogger(__name__)
SUMMARY_LIMIT = 200


def summary_of(event: AlertEvent) -> str:
    """One line for the Web UI's workflow list, e.g. ``KubePodCrashLooping shop/web``."""
    labels = event.labels
    workload = workload_key(labels) or labels.get("service") or labels.get("instance")
    target = "/".join(part for part in (labels.get("namespace"), workload) if part)
    return f"{event.alertname} {target}".strip()[:SUMMARY_LIMIT]


async def tell_incident(client: Client, incident_id: str, event: AlertEvent, *, cluster: str,
                        task_queue: str) -> bool:
    """Tell one event to its incident; whether the incident exists afterwards."""
    if event.status == "firing":
        await client.start_workflow(
            INCIDENT_WORKFLOW,
            IncidentInput(incident_id=incident_id, cluster=cluster),
            id=incident_id,
            task_queue=queue_for(task_queue, cluster),
            # A repeat or a second alert of the group joins the running incident.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=SIGNAL_ALERT_FIRED,
            start_signal_args=[event],
            static_summary=summary_of(event),
        )
        return True
    # A resolved alert must never open an incident: signal only what is running.
    try:
        await client.get_workflow_handle(incident_id).signal(SIGNAL_ALERT_RESOLVED, event)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        log.debug("resolved alert for %s: no open incident, nothing to resolve", incident_id)
        return False
    return True
