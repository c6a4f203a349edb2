"""The legal deadline of a request, on durable timers: a warning before it, an incident once it passes.

Runs beside the request's steps for as long as the request runs. An extension moves the due date,
and the watch follows it (a new warning for the new date). A request that ends after its due date
resolves its overdue alert when it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.gdpr_alerts import DUE_SOON_ALERT, OVERDUE_ALERT, incident_for, request_event
    from zerotouch.policy import Policy

from workflows.gdpr import calls
from workflows.gdpr.state import DsrRun


async def watch_deadline(run: DsrRun, policy: Policy, cluster: str) -> None:
    warned_for: datetime | None = None
    overdue = False
    while not _over(run):
        due, now = run.due_at, workflow.now()
        warn_at = due - policy.gdpr.warn_before
        if warned_for != due and warn_at <= now < due:
            await _tell(run, policy, cluster, DUE_SOON_ALERT, f"request {run.params.request_id} is due "
                                                              f"{due.isoformat(timespec='seconds')}")
            warned_for = due
        if now >= due and not overdue:
            await _tell(run, policy, cluster, OVERDUE_ALERT, f"request {run.params.request_id} was due "
                                                             f"{due.isoformat(timespec='seconds')}")
            overdue = True
        wake = next((moment for moment in (warn_at, due) if moment > now), None)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(_moved(run, due), timeout=(wake - now) if wake else None)
    if overdue:
        await _tell(run, policy, cluster, OVERDUE_ALERT, f"request {run.params.request_id} ended "
                                                         f"{run.status.outcome}", firing=False)


async def _tell(run: DsrRun, policy: Policy, cluster: str, alertname: str, summary: str,
                firing: bool = True) -> None:
    event = request_event(alertname, run.params.request_id, summary=summary, at=workflow.now(), firing=firing)
    incident_id = incident_for(event, policy.group_by, cluster)
    await calls.tell_incident(incident_id, event, cluster)
    if firing:
        run.note("deadline", f"{summary}: incident {incident_id}")




def _over(run: DsrRun) -> bool:
    return run.status.state == "done"


def _moved(run: DsrRun, due: datetime) -> Callable[[], bool]:
    """Wake when the request ends or its due date moves (an extension)."""
    return lambda: _over(run) or run.due_at != due
