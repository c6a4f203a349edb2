"""WatchdogWorkflow: one check cycle, started by a Temporal Schedule (the policy's `schedules:`).

Each enabled check is pulled at once; every series past a threshold becomes the alert its rule
would send and goes, through the relay's own call, to the incident that alert would open or join.
Then the relay's last delivery: Alertmanager silent for longer than `silence_after` pages the
notification channels directly, once per silence (the previous cycle's result says whether it did).
A check that cannot run is reported in the result; it never stops the others.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.alerts import AlertEvent, incident_id_for
    from zerotouch.durations import format_duration
    from zerotouch.models import Notification
    from zerotouch.policy import Policy
    from zerotouch.watchdog import (
        SILENCE_PAGE_ID,
        WATCHDOG_WORKFLOW,
        CheckReading,
        CheckReport,
        CheckRequest,
        Finding,
        IncidentDelivery,
        RelayProbe,
        SilenceReport,
        WatchdogCheck,
        WatchdogInput,
        WatchdogResult,
        epoch,
        finding_event,
        postgres_series,
        silence_episode,
    )

from workflows.watchdog import calls


@workflow.defn(name=WATCHDOG_WORKFLOW)
class WatchdogWorkflow:
    @workflow.run
    async def run(self, params: WatchdogInput) -> WatchdogResult:
        """Policy → every check at once → findings to their incidents → Alertmanager's silence."""
        started = workflow.now()
        policy = await calls.load_policy(params.cluster)
        chosen = _chosen(policy, params)
        outcomes = await asyncio.gather(*(_check(name, check, policy, params.cluster) for name, check in chosen))
        now = workflow.now()
        reports, findings, events = [], [], dict[tuple[str, str], AlertEvent]()
        for (name, check), (reading, error) in zip(chosen, outcomes, strict=True):
            reports.append(CheckReport(name=name, alertname=check.alertname, kind=check.kind,
                                       findings=len(reading.series), truncated=reading.truncated,
                                       queries=reading.queries, seconds=round(reading.seconds, 4), error=error))
            for series in reading.series:
                event = finding_event(check, series.labels, now)
                if policy.alerts.is_heartbeat(event.labels):  # as the relay: an always-firing alert opens nothing
                    continue
                incident = incident_id_for(event, policy.group_by, params.cluster)
                findings.append(Finding(check=name, incident_id=incident, fingerprint=event.fingerprint,
                                        value=series.value, labels=event.labels))
                events.setdefault((incident, event.fingerprint), event)  # two checks, one alert: told once
        incidents: list[str] = []
        if events:
            delivery = IncidentDelivery(cluster=params.cluster, events=[(i, e) for (i, _), e in events.items()])
            incidents = sorted(set(await calls.open_incidents(delivery, params.cluster)))
        silence = None
        if params.arguments.silence and policy.watchdog.relay_url:
            silence = await _watch_silence(policy, policy.watchdog.relay_url, params.cluster)
        finished = workflow.now()
        return WatchdogResult(schedule=params.schedule, started_at=started, finished_at=finished,
                              seconds=(finished - started).total_seconds(), checks=reports, findings=findings,
                              incidents=incidents,
                              queries=sum(r.queries for r in reports), silence=silence)


def _chosen(policy: Policy, params: WatchdogInput) -> list[tuple[str, WatchdogCheck]]:
    checks = policy.watchdog.checks
    wanted = params.arguments.checks
    unknown = [name for name in wanted or [] if name not in checks]
    if unknown:
        raise ApplicationError(f"schedule {params.schedule or '-'}: check(s) {unknown} not in the policy's "
                               "watchdog.checks", type="UnknownCheck", non_retryable=True)
    names = sorted(checks) if wanted is None else wanted
    return [(name, checks[name]) for name in names if checks[name].enabled]


async def _check(name: str, check: WatchdogCheck, policy: Policy, cluster: str) -> tuple[CheckReading, str]:
    """One check's reading, or an empty one and why it could not be read."""
    try:
        if check.kind == "postgres_connections":
            assert check.connection is not None  # the policy requires it
            usage = await calls.connection_usage(check.connection, cluster)
            return CheckReading(series=postgres_series(check, usage), queries=0), ""
        limit = policy.watchdog.max_findings_per_check
        return await calls.run_check(CheckRequest(name=name, check=check, limit=limit), cluster), ""
    except ActivityError as error:
        cause = error.cause
        return CheckReading(), cause.message if isinstance(cause, ApplicationError) else str(cause or error)


def _page_channels(policy: Policy) -> list[str]:
    """`watchdog.page`, else whoever the P0 ladder notifies, else the dashboard."""
    if policy.watchdog.page:
        return list(policy.watchdog.page)
    ladder = sorted({channel for rung in policy.escalation.get("P0", []) for channel in rung.notify})
    return ladder or ["dashboard"]


async def _watch_silence(policy: Policy, relay_url: str, cluster: str) -> SilenceReport:
    previous = (workflow.get_last_completion_result(WatchdogResult)
                if workflow.has_last_completion_result() else None)
    paged = previous.silence.episode if isinstance(previous, WatchdogResult) and previous.silence else None
    try:
        reading = await calls.read_relay(RelayProbe(relay_url=relay_url), cluster)
    except ActivityError as error:
        cause = error.cause
        why = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        return SilenceReport(episode=paged, error=why)
    silent, page_now = silence_episode(reading, policy.watchdog.silence_after, paged)
    report = SilenceReport(last_delivery=epoch(reading.last_delivery), silent_seconds=round(reading.silent_seconds, 3),
                           silent=silent, episode=paged if silent else None)
    if not page_now:
        return report
    quiet = format_duration(policy.watchdog.silence_after)
    silent_for = format_duration(timedelta(seconds=int(reading.silent_seconds)))
    summary = (f"Alertmanager has delivered nothing to the zerotouch relay for {silent_for} (more than {quiet}), "
               "not even its Watchdog alert")
    text = (f"No webhook reached {relay_url} since {report.last_delivery.isoformat() if report.last_delivery else '?'}:"
            " alerts are not turning into incidents. Check Alertmanager, its route to the relay, and Prometheus.")
    errors = []
    for channel in _page_channels(policy):
        note = Notification(channel=channel, incident_id=f"{SILENCE_PAGE_ID}{'-' + cluster if cluster else ''}",
                            severity="P1", summary=summary, text=text, destination=policy.channels.get(channel))
        try:
            await calls.page(note, cluster)
            report.paged.append(channel)
        except ActivityError as error:
            cause = error.cause
            errors.append(f"{channel}: {cause.message if isinstance(cause, ApplicationError) else cause or error}")
    if report.paged:  # one channel reached: this silence is paged; none: the next cycle tries again
        report.episode = reading.last_delivery
    report.error = "; ".join(errors)
    return report
