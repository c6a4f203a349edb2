"""Handing alerts to their incidents: signal-with-start for firing, plain signal for resolved.

A webhook carries a whole Alertmanager aggregation group, thousands of alerts in a storm. The
relay answers 200 only once Temporal took every one of them; when that does not happen within
``temporal_timeout_seconds`` (Temporal slow or away) it answers 503 and Alertmanager sends the
whole group again. `CatchUp` remembers what Temporal already acknowledged of such a group, so
each retry continues where the last attempt stopped instead of starting over.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from starters.relay.config import RelayConfig
from starters.relay.db_failover import failover_database, start_failover
from starters.relay.node_recovery import recovery_node, start_node_recovery
from starters.relay.repeats import RepeatFilter
from zerotouch.alerts import AlertEvent, WebhookPayload, incident_id_for, to_event
from zerotouch.incident_signals import tell_incident

log = logging.getLogger("zerotouch.relay")

# Statuses after which the same call may well succeed later: Alertmanager should retry.
TRANSIENT_STATUSES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
}
# Incidents told at once per webhook. Temporal's throughput bounds a big group, not this (5,000
# alerts to the dev server: 38 s with 64 in flight, 52 s with 256, on a busy 2-core machine); the
# bound keeps a payload of thousands from queueing thousands of RPCs at once, each of which the
# timeout would cancel with Temporal's progress on it unknown.
DELIVERY_CONCURRENCY = 64
# How long the relay remembers what Temporal already took of a group it answered 503 for:
# Alertmanager retries within the flush (group_interval, at least 10 s) and sends the group
# again at every group_interval until it is delivered (kube-prometheus: 5 min).
CATCH_UP_SECONDS = 15 * 60.0
# At most this many acknowledged alerts remembered over all groups (about 200 bytes each).
CATCH_UP_MAX_ALERTS = 100_000
# A group delivered only after a failure is remembered this much longer: the attempt that completed
# may be one Alertmanager had already given up on (its notify deadline passed while Temporal was
# still taking the group), and then Alertmanager sends the group again at its next flush.
CATCH_UP_GRACE_SECONDS = 30.0


class TemporalUnavailable(Exception):
    """Temporal did not take the alerts now; a retry later may succeed (503)."""


class TemporalRejected(Exception):
    """Temporal refused the alerts for a reason a retry will not fix (502)."""


@dataclass(frozen=True)
class Delivery:
    accepted: int
    incidents: list[str]
    heartbeats: int = 0  # always-firing alerts (Watchdog) accepted and not told to any incident


# An alert as the relay told it to an incident: repeats of it in a retried group are skipped.
EventKey = tuple[str, str, str, datetime]


@dataclass
class GroupProgress:
    """What Temporal acknowledged of one group (key → whether the incident existed afterwards).

    Nothing is skipped until an attempt of the group has failed (``resuming``): until then every
    delivery, repeats included, reaches the incident, as it did before there was a memory.
    """

    expires: float
    resuming: bool = False
    done: dict[EventKey, bool] = field(default_factory=dict)
    in_flight: dict[EventKey, asyncio.Event] = field(default_factory=dict)

    async def once(self, key: EventKey, send: Callable[[], Awaitable[bool]]) -> bool:
        """``send()``, unless the group is being resumed and Temporal already acknowledged ``key``.

        While resuming, a concurrent delivery of the same group (Alertmanager's retry, while the
        attempt it gave up on still runs here) waits for that attempt's call instead of repeating it.
        """
        while self.resuming and key not in self.done:
            running = self.in_flight.get(key)
            if running is None:
                break
            await running.wait()
        if self.resuming and key in self.done:
            return self.done[key]
        marker = self.in_flight[key] = asyncio.Event()
        try:
            told = await send()
            self.done[key] = told
            return told
        finally:
            if self.in_flight.get(key) is marker:
                del self.in_flight[key]
            marker.set()


class CatchUp:
    """The progress of groups whose delivery has not completed yet, by Alertmanager's ``groupKey``.

    Only a retry of a group whose delivery failed skips anything: a group is forgotten as soon
    as one delivery of it completes (``grace`` seconds later if an attempt had failed), or after
    ``ttl`` seconds. So the cost of the memory is confined to the catch-up: an alert whose
    incident closed while its group kept failing is not re-sent by that group's retries; the
    group's next delivery after that sends it again.
    """

    def __init__(self, *, ttl: float = CATCH_UP_SECONDS, max_alerts: int = CATCH_UP_MAX_ALERTS,
                 grace: float = CATCH_UP_GRACE_SECONDS) -> None:
        self._ttl = ttl
        self._grace = grace
        self._max_alerts = max_alerts
        self._groups: dict[str, GroupProgress] = {}

    def begin(self, group_key: str) -> GroupProgress:
        now = time.monotonic()
        for key in [key for key, progress in self._groups.items() if progress.expires < now]:
            del self._groups[key]
        remembered = sum(len(progress.done) for progress in self._groups.values())
        for key in list(self._groups):
            if remembered <= self._max_alerts:
                break
            remembered -= len(self._groups.pop(key).done)
        progress = self._groups.get(group_key)
        if progress is None:
            progress = self._groups[group_key] = GroupProgress(expires=now + self._ttl)
        progress.expires = now + self._ttl
        return progress

    def complete(self, group_key: str, progress: GroupProgress) -> None:
        if self._groups.get(group_key) is not progress:
            return
        if progress.resuming:
            progress.expires = min(progress.expires, time.monotonic() + self._grace)
        else:
            del self._groups[group_key]

    def __len__(self) -> int:
        return len(self._groups)


async def _signal(client: Client, incident_id: str, event: AlertEvent, config: RelayConfig) -> bool:
    """Tell one event to its incident; whether the incident exists afterwards."""
    return await tell_incident(client, incident_id, event, cluster=config.cluster, task_queue=config.task_queue)


async def _tell_incident(client: Client, incident_id: str, events: list[AlertEvent], config: RelayConfig,
                         progress: GroupProgress, slots: asyncio.Semaphore, repeats: RepeatFilter | None) -> bool:
    """Deliver one incident's events in payload order; whether the incident exists afterwards."""
    told = False
    async with slots:
        for event in events:
            key = (incident_id, event.fingerprint, event.status, event.starts_at)
            send = functools.partial(_signal, client, incident_id, event, config)
            if repeats is not None:
                send = functools.partial(repeats.tell, incident_id, event, send)
            told = await progress.once(key, send) or told
    return told


async def deliver(client: Client, payload: WebhookPayload, config: RelayConfig,
                  catch_up: CatchUp | None = None, repeats: RepeatFilter | None = None) -> Delivery:
    """Tell every alert of ``payload`` to its incident; returns only once Temporal accepted all.

    Incidents are told concurrently (a payload of 1000 alerts is not 1000 round trips in a
    row, nor 1000 at once: `DELIVERY_CONCURRENCY`); alerts of one incident go in order, so a
    fire-then-resolve pair arrives as sent. With ``catch_up``, a retried group skips the alerts
    Temporal acknowledged in an earlier attempt; with ``repeats``, an alert identical to what its
    incident was just told is answered without telling it again (`starters.relay.repeats`).
    """
    received_at = datetime.now(UTC)
    by_incident: dict[str, list[AlertEvent]] = {}
    recoveries: dict[str, str] = {}  # node → the alert that asks for its recovery (node_recovery.py)
    failovers: dict[str, str] = {}  # database → the alert that asks for its failover (db_failover.py)
    heartbeats = 0
    for alert in payload.alerts:
        if config.alert_sources.is_heartbeat(alert.labels):
            heartbeats += 1
            continue
        node = recovery_node(alert.labels, config.node_recovery)
        if node is not None:
            if alert.status == "firing":
                recoveries.setdefault(node, alert.labels.get("alertname", ""))
            continue
        database = failover_database(alert.labels, config.databases)
        if database is not None:
            if alert.status == "firing":
                failovers.setdefault(database, alert.labels.get("alertname", ""))
            continue
        event = to_event(alert, received_at=received_at, external_url=payload.external_url)
        by_incident.setdefault(incident_id_for(event, config.group_by, config.cluster), []).append(event)
    progress = catch_up.begin(payload.group_key) if catch_up is not None else GroupProgress(expires=0.0)
    slots = asyncio.Semaphore(DELIVERY_CONCURRENCY)
    try:
        async with asyncio.timeout(config.temporal_timeout_seconds):
            # return_exceptions: let every call finish rather than leave stray tasks behind one failure.
            results = await asyncio.gather(
                *(_tell_incident(client, incident_id, events, config, progress, slots, repeats)
                  for incident_id, events in by_incident.items()),
                return_exceptions=True,
            )
            started = await asyncio.gather(
                *(start_node_recovery(client, config.cluster, node, reason) for node, reason in recoveries.items()),
                *(start_failover(client, config.cluster, name, reason) for name, reason in failovers.items()),
                return_exceptions=True,
            )
    except TimeoutError:
        progress.resuming = True
        raise TemporalUnavailable(
            f"Temporal did not take all {len(payload.alerts)} alerts within {config.temporal_timeout_seconds:g} "
            f"seconds ({len(progress.done)} so far)"
        ) from None
    for result in [*results, *started]:
        if isinstance(result, BaseException):
            progress.resuming = True
            raise _classify(result)
    if catch_up is not None:
        catch_up.complete(payload.group_key, progress)
    incidents = [incident_id for incident_id, told in zip(by_incident, results, strict=True) if told]
    incidents += [str(workflow_id) for workflow_id in started]  # the recoveries that took their alerts
    return Delivery(accepted=len(payload.alerts), incidents=incidents, heartbeats=heartbeats)


def _classify(error: BaseException) -> Exception:
    if isinstance(error, RPCError) and error.status in TRANSIENT_STATUSES:
        return TemporalUnavailable(f"Temporal is unavailable ({error.status.name})")
    if isinstance(error, RPCError):
        status = error.status.name if error.status is not None else "unknown status"
        log.error("Temporal refused an alert: %s: %s", status, error.message)
        return TemporalRejected(f"Temporal refused the alert ({status}: {error.message[:200]})")
    log.error("delivering alerts failed", exc_info=error)
    return TemporalRejected(f"delivering the alerts failed ({type(error).__name__})")
