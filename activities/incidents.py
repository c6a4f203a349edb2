"""An incident handing its alerts to the incident they belong to (a merge), through a Temporal client.

Workflows cannot signal-with-start another workflow, so the merging incident asks this activity.
Idempotent: the target absorbs a repeated alert as a repeat (it keeps one entry per fingerprint).
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from zerotouch import activity_names as names
from zerotouch.incident_signals import tell_incident
from zerotouch.models import AlertForward
from zerotouch.names import WORKFLOWS_QUEUE


class IncidentActivities:
    def __init__(self, *, client: Client) -> None:
        self._client = client

    @activity.defn(name=names.FORWARD_ALERTS)
    async def forward_alerts(self, forward: AlertForward) -> int:
        """Tell every alert to ``forward.incident_id``, starting it if needed; how many it took."""
        told = 0
        for event in forward.events:
            told += await tell_incident(self._client, forward.incident_id, event, cluster=forward.cluster,
                                        task_queue=WORKFLOWS_QUEUE)
        return told
