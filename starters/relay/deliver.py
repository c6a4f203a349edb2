"""Handing alerts to their incidents: signal-with-start for firing, plain signal for resolved."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from starters.relay.config import RelayConfig
from zerotouch.alerts import AlertEvent, WebhookPayload, incident_id_for, to_event
from zerotouch.models import IncidentInput
from zerotouch.names import INCIDENT_WORKFLOW, SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED, queue_for

log = logging.getLogger("zerotouch.relay")

# Statuses after which the same call may well succeed later: Alertmanager should retry.
_TRANSIENT = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
}
SUMMARY_LIMIT = 200


class TemporalUnavailable(Exception):
    """Temporal did not take the alerts now; a retry later may succeed (503)."""


class TemporalRejected(Exception):
    """Temporal refused the alerts for a reason a retry will not fix (502)."""


@dataclass(frozen=True)
class Delivery:
    accepted: int
    incidents: list[str]


def summary_of(event: AlertEvent) -> str:
    """One line for the Web UI's workflow list, e.g. ``KubePodCrashLooping shop/web``."""
    labels = event.labels
    workload = labels.get("deployment") or labels.get("pod") or labels.get("service") or labels.get("instance")
    target = "/".join(part for part in (labels.get("namespace"), workload) if part)
    return f"{event.alertname} {target}".strip()[:SUMMARY_LIMIT]


async def _tell_incident(client: Client, incident_id: str, events: list[AlertEvent], config: RelayConfig) -> bool:
    """Deliver one incident's events in payload order; whether the incident exists afterwards."""
    told = False
    for event in events:
        if event.status == "firing":
            await client.start_workflow(
                INCIDENT_WORKFLOW,
                IncidentInput(incident_id=incident_id, cluster=config.cluster),
                id=incident_id,
                task_queue=queue_for(config.task_queue, config.cluster),
                # A repeat or a second alert of the group joins the running incident.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal=SIGNAL_ALERT_FIRED,
                start_signal_args=[event],
                static_summary=summary_of(event),
            )
            told = True
            continue
        # A resolved alert must never open an incident: signal only what is running.
        try:
            await client.get_workflow_handle(incident_id).signal(SIGNAL_ALERT_RESOLVED, event)
            told = True
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            log.debug("resolved alert for %s: no open incident, nothing to resolve", incident_id)
    return told


async def deliver(client: Client, payload: WebhookPayload, config: RelayConfig) -> Delivery:
    """Tell every alert of ``payload`` to its incident; returns only once Temporal accepted all.

    Incidents are told concurrently (a payload of 1000 alerts is not 1000 round
    trips in a row); alerts of one incident go in order, so a fire-then-resolve
    pair arrives as sent.
    """
    received_at = datetime.now(UTC)
    by_incident: dict[str, list[AlertEvent]] = {}
    for alert in payload.alerts:
        event = to_event(alert, received_at=received_at)
        by_incident.setdefault(incident_id_for(event, config.group_by, config.cluster), []).append(event)
    try:
        async with asyncio.timeout(config.temporal_timeout_seconds):
            # return_exceptions: let every call finish rather than leave stray tasks behind one failure.
            results = await asyncio.gather(
                *(_tell_incident(client, incident_id, events, config) for incident_id, events in by_incident.items()),
                return_exceptions=True,
            )
    except TimeoutError:
        raise TemporalUnavailable(
            f"Temporal did not answer within {config.temporal_timeout_seconds:g} seconds"
        ) from None
    for result in results:
        if isinstance(result, BaseException):
            raise _classify(result)
    incidents = [incident_id for incident_id, told in zip(by_incident, results, strict=True) if told]
    return Delivery(accepted=len(payload.alerts), incidents=incidents)


def _classify(error: BaseException) -> Exception:
    if isinstance(error, RPCError) and error.status in _TRANSIENT:
        return TemporalUnavailable(f"Temporal is unavailable ({error.status.name})")
    if isinstance(error, RPCError):
        status = error.status.name if error.status is not None else "unknown status"
        log.error("Temporal refused an alert: %s: %s", status, error.message)
        return TemporalRejected(f"Temporal refused the alert ({status}: {error.message[:200]})")
    log.error("delivering alerts failed", exc_info=error)
    return TemporalRejected(f"delivering the alerts failed ({type(error).__name__})")
