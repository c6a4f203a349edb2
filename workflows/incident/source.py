"""Before a resolved incident closes, Alertmanager confirms that none of its alerts is active.

The relay may have been down while the fault came back: Alertmanager's firing set did not
change, so it would send nothing until repeat_interval. Asking the source closes that gap.
An alert Alertmanager lists that the incident saw resolve, or a newer instance of one, counts
as fired again; the same instance it had before the fix keeps it open until it resolves (the
rule may lag the fix); silenced and inhibited ones count as not active (someone, or a rule,
decided they need no one). While Alertmanager cannot be reached or the alert still fires, the
incident stays open and asks again, after a growing backoff or when a delivery arrives; after
``alertmanager.escalate_unconfirmed_after`` it tells people, and keeps asking.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.alertmanager_source import SourceAlert, SourceAnswer, SourceCheck
    from zerotouch.alerts import AlertEvent
    from zerotouch.durations import format_duration
    from zerotouch.models import Notification
    from zerotouch.policy import Policy

from workflows.incident import calls, report
from workflows.incident.state import Incident

# Running incidents replay as they ran: only a cooldown that ends under this code asks the source.
CONFIRM_AT_SOURCE_PATCH = "confirm-resolution-at-source"
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=15)
# Alertmanager's API gives startsAt in milliseconds, its webhooks in nanoseconds: the same instance.
SAME_INSTANCE = timedelta(seconds=1)


def common_labels(alerts: Iterable[AlertEvent]) -> dict[str, str]:
    """The label pairs every alert carries: Alertmanager filters on them, fingerprints decide."""
    shared: dict[str, str] | None = None
    for alert in alerts:
        shared = dict(alert.labels) if shared is None else {
            k: v for k, v in shared.items() if alert.labels.get(k) == v}
    return shared or {}


def _names(alerts: list[SourceAlert]) -> str:
    return ", ".join(sorted({alert.alertname for alert in alerts if alert.alertname})) or "its alert"


class SourceConfirmation:
    """One question, asked until answered: may this resolved incident close?"""

    def __init__(self, incident: Incident, policy: Policy, cluster: str, alerts: Iterable[AlertEvent]) -> None:
        self._incident = incident
        self._policy = policy
        self._cluster = cluster
        self._alerts = list(alerts)

    async def allows_close(self) -> bool:
        """True: close (nothing active at the source, or no source known). False: it fired again or was aborted."""
        incident = self._incident
        url = self._policy.alertmanager.url or incident.source_url
        fingerprints = sorted({alert.fingerprint for alert in self._alerts} | set(incident.firing))
        if not url or not fingerprints:
            incident.source_confirmed("not confirmed at the source: no Alertmanager URL is known (no externalURL in "
                                      "its deliveries, no alertmanager.url in the policy)")
            return True
        check = SourceCheck(url=url, matchers=common_labels(self._alerts), fingerprints=fingerprints)
        incident.confirming_at_source = True
        try:
            return await self._confirm(check)
        finally:
            incident.confirming_at_source = False

    def _fired_again(self, alert: SourceAlert) -> bool:
        """What the relay would have delivered as a new firing: an alert the incident saw resolve, or a newer
        instance of it (it resolved and fired again while nobody told the incident)."""
        if not self._incident.firing.get(alert.fingerprint, False):
            return True
        known = next((a.starts_at for a in self._alerts if a.fingerprint == alert.fingerprint), None)
        return alert.starts_at is not None and known is not None and alert.starts_at > known + SAME_INSTANCE

    async def _confirm(self, check: SourceCheck) -> bool:
        """Ask until Alertmanager lists none of its alerts (True) or one fired again, or a human aborted (False).

        While Alertmanager cannot be reached, or still lists the alert the incident had before the fix,
        the incident stays open and asks again: after a growing backoff, or at once when a delivery arrives.
        """
        incident, url, total = self._incident, check.url, len(check.fingerprints)
        started, backoff, noted, escalated = workflow.now(), FIRST_BACKOFF, set[str](), False
        bound = self._policy.alertmanager.escalate_unconfirmed_after
        while True:
            try:
                answer: SourceAnswer | None = await calls.find_firing_alerts(check, self._cluster)
            except ActivityError as error:
                answer, kind = None, "unreachable"
                cause = error.cause.message if isinstance(error.cause, ApplicationError) else str(error.cause or error)
                why = f"could not confirm with Alertmanager at {url}: {cause}; staying open"
            if incident.refired or incident.aborted_by is not None:
                return False
            if answer is not None:
                again = [alert for alert in answer.active if self._fired_again(alert)]
                if again:
                    incident.active_at_source([a.fingerprint for a in again], f"{_names(again)} active at "
                                              f"Alertmanager {url} after the cooldown: treated as fired again")
                    return False
                if not answer.active:
                    incident.source_confirmed(f"confirmed with Alertmanager at {url}: none of its {total} "
                                              "alert(s) is active")
                    return True
                kind = "firing"
                why = (f"{_names(answer.active)} still firing at Alertmanager {url}, the alert it had before the "
                       "fix: staying open until it resolves")
            if kind not in noted:  # once per kind: the timeline is the audit trail, not a log
                noted.add(kind)
                incident.note("resolution", why)
            if not escalated and workflow.now() - started >= bound:
                escalated = True
                await self._escalate(f"Alertmanager at {url} has not confirmed the resolution for "
                                     f"{format_duration(bound)} ({why}); the incident stays open: check the "
                                     "alert, then let it close or abort it")
            seen = incident.alerts_received
            try:
                await workflow.wait_condition(
                    lambda seen=seen: incident.refired or incident.aborted_by is not None  # type: ignore[misc]
                    or incident.alerts_received != seen, timeout=backoff)
            except TimeoutError:
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if incident.refired or incident.aborted_by is not None:
                return False
            # A delivery arrived (the relay's resolution, say): ask again now.

    async def _escalate(self, why: str) -> None:
        """Tell the people of the severity's ``when: failed`` rungs, now (the ladder settled at resolution)."""
        incident = self._incident
        incident.note("escalation", why)
        incident.escalate(why)
        severity = incident.triage.severity if incident.triage else self._policy.severity.default
        channels = dict.fromkeys(c for rung in self._policy.escalation.get(severity, []) if rung.when == "failed"
                                 for c in rung.notify)
        for name in channels:
            channel = self._policy.channels[name]
            if channel.type == "dashboard":
                continue  # the note above is what the dashboard shows
            notification = Notification(channel=name, incident_id=incident.incident_id, severity=severity,
                                        summary=f"[{severity}] {incident.incident_id}: {why}",
                                        text=report.details(incident), destination=channel)
            try:
                await calls.send_notification(notification, self._cluster)
                incident.note("escalation", f"notified {name}: resolution unconfirmed")
            except ActivityError as error:
                incident.note("escalation", f"could not notify {name}: {error.cause or error}")
