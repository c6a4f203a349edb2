"""The escalation ladder: who is told, after how long, on durable timers.

Rungs with ``when: unresolved`` count from detection and fire only while the
incident is still unresolved; rungs with ``when: failed`` count from the moment
automation gave up (escalated and froze). A ladder of hours costs nothing while
it waits: the timers live in Temporal, not in a process.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from zerotouch.durations import format_duration
    from zerotouch.models import Notification
    from zerotouch.policy import Policy, Rung


from workflows.incident import report
from workflows.incident.calls import send_notification
from workflows.incident.state import Incident

_SETTLED = ("resolved", "aborted", "closed", "taken_over")


class EscalationLadder:
    """Pages people while the incident stays unresolved, and once it escalates (`Incident.escalate`)."""

    def __init__(self, incident: Incident, policy: Policy, cluster: str) -> None:
        self._incident = incident
        self._cluster = cluster
        self._policy = policy

    def _rungs(self, when: str) -> list[Rung]:
        severity = self._incident.triage.severity if self._incident.triage else self._policy.severity.default
        rungs = [r for r in self._policy.escalation.get(severity, []) if r.when == when]
        return sorted(rungs, key=lambda rung: rung.after)

    def _settled(self) -> bool:
        return self._incident.state in _SETTLED

    async def run(self) -> None:
        await asyncio.gather(self._unresolved_rungs(), self._failed_rungs())

    async def _unresolved_rungs(self) -> None:
        for rung in self._rungs("unresolved"):
            if not await self._wait_until(self._incident.detected_at, rung.after):
                return
            await self._notify(rung, f"unresolved after {format_duration(rung.after)}")

    async def _failed_rungs(self) -> None:
        rungs = self._rungs("failed")
        await workflow.wait_condition(lambda: self._incident.escalated_at is not None or self._settled())
        if self._incident.escalated_at is None:
            return
        if not rungs:
            self._incident.note("escalation", f"escalated ({self._incident.escalation_reason}); shown on the dashboard")
        for rung in rungs:
            # Once automation has failed, settling later does not un-fail it: still tell people.
            await workflow.sleep(max(timedelta(0), self._incident.escalated_at + rung.after - workflow.now()))
            if self._incident.state in ("resolved", "aborted", "closed"):
                return
            await self._notify(rung, f"automation gave up: {self._incident.escalation_reason}")

    async def _wait_until(self, start: datetime | None, after: timedelta) -> bool:
        """Sleep until ``start + after`` unless the incident settles first; True if still open."""
        remaining = (start or workflow.now()) + after - workflow.now()
        if remaining > timedelta(0):
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(self._settled, timeout=remaining)
        return not self._settled()

    async def _notify(self, rung: Rung, why: str) -> None:
        incident = self._incident
        triage = incident.triage
        summary = f"[{triage.severity if triage else '?'}] {incident.incident_id}: {why}"
        for channel_name in rung.notify:
            channel = self._policy.channels[channel_name]
            if channel.type == "dashboard":
                incident.note("escalation", f"{why}; shown on the dashboard")
                continue
            notification = Notification(
                channel=channel_name,
                incident_id=incident.incident_id,
                severity=triage.severity if triage else None,
                summary=summary,
                text=report.details(incident),
                destination=channel,
            )
            try:
                result = await send_notification(notification, self._cluster)
                incident.note("escalation", f"notified {channel_name}: {why} ({result.detail})")
            except ActivityError as error:
                incident.note("escalation", f"could not notify {channel_name}: {error.cause or error}")
