"""Steering incidents: list, show, approve, abort, take over, request a retry.

Each is one Temporal call by name, so the stock `temporal` CLI and the Web UI can
do the same (`temporal workflow update execute --name approve ...`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from zerotouch.models import (
    INCIDENT_STATES,
    AbortInput,
    ApproveInput,
    HumanDecision,
    IncidentStatus,
    RetryRequestInput,
    TakeOverInput,
)
from zerotouch.names import (
    INCIDENT_WORKFLOW,
    QUERY_STATUS,
    SA_INCIDENT_SEVERITY,
    SA_INCIDENT_STATE,
    SA_RUNBOOK,
    SA_SERVICE,
    UPDATE_ABORT,
    UPDATE_APPROVE,
    UPDATE_REQUEST_RETRY,
    UPDATE_TAKE_OVER,
)


class SteerError(Exception):
    """A refusal a user can act on (unknown incident, not an approver, ...)."""


class IncidentRow(BaseModel):
    incident_id: str
    state: str
    severity: str
    runbook: str
    service: str
    started: str
    running: bool


async def list_incidents(client: Client, state: str | None = None, limit: int = 200) -> list[IncidentRow]:
    if state is not None and state not in INCIDENT_STATES:
        raise SteerError(f"unknown state {state!r}; choose from {', '.join(INCIDENT_STATES)}")
    query = f'WorkflowType="{INCIDENT_WORKFLOW}"'
    if state is not None:
        query += f' AND IncidentState="{state}"'
    rows = []
    async for execution in client.list_workflows(query, limit=limit):
        attributes = execution.typed_search_attributes
        rows.append(
            IncidentRow(
                incident_id=execution.id,
                state=attributes.get(SA_INCIDENT_STATE) or "open",
                severity=attributes.get(SA_INCIDENT_SEVERITY) or "-",
                runbook=attributes.get(SA_RUNBOOK) or "-",
                service=attributes.get(SA_SERVICE) or "-",
                started=execution.start_time.isoformat(timespec="seconds"),
                running=execution.close_time is None,
            )
        )
    return rows


async def show_incident(client: Client, incident_id: str) -> IncidentStatus:
    handle = client.get_workflow_handle(incident_id)
    try:
        return await handle.query(QUERY_STATUS, result_type=IncidentStatus)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise SteerError(f"no incident {incident_id!r}; list them with `zerotouch incidents`") from None
        raise


async def _update(client: Client, incident_id: str, name: str, argument: BaseModel) -> HumanDecision:
    handle = client.get_workflow_handle(incident_id)
    try:
        return await handle.execute_update(name, argument, result_type=HumanDecision)
    except WorkflowUpdateFailedError as error:
        cause: Any = error.cause
        raise SteerError(getattr(cause, "message", None) or str(cause)) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise SteerError(await _why_not_found(handle)) from None
        raise


async def _why_not_found(handle: WorkflowHandle[Any, Any]) -> str:
    try:
        description = await handle.describe()
    except RPCError:
        return f"no incident {handle.id!r}; list them with `zerotouch incidents`"
    state = description.typed_search_attributes.get(SA_INCIDENT_STATE) or "closed"
    return f"incident {handle.id!r} is over ({state}); nothing can change it now"


async def approve(client: Client, incident_id: str, by: str, note: str = "") -> HumanDecision:
    return await _update(client, incident_id, UPDATE_APPROVE, ApproveInput(by=by, note=note))


async def abort(client: Client, incident_id: str, by: str, reason: str) -> HumanDecision:
    return await _update(client, incident_id, UPDATE_ABORT, AbortInput(by=by, reason=reason))


async def take_over(client: Client, incident_id: str, by: str, note: str = "") -> HumanDecision:
    return await _update(client, incident_id, UPDATE_TAKE_OVER, TakeOverInput(by=by, note=note))


async def request_retry(client: Client, incident_id: str, by: str, note: str = "") -> HumanDecision:
    return await _update(client, incident_id, UPDATE_REQUEST_RETRY, RetryRequestInput(by=by, note=note))


def render_rows(rows: list[IncidentRow]) -> str:
    if not rows:
        return "no incidents"
    header = ("INCIDENT", "STATE", "SEV", "RUNBOOK", "SERVICE", "STARTED")
    table = [header] + [(r.incident_id, r.state, r.severity, r.runbook, r.service, r.started) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in table)


def render_status(status: IncidentStatus) -> str:
    lines = [
        f"incident   {status.incident_id}",
        f"state      {status.state}" + (" (frozen: automation stopped)" if status.frozen else ""),
        f"severity   {status.severity or '-'}",
        f"runbook    {status.runbook or '-'}"
        + (f" (confidence {status.confidence:.2f})" if status.confidence is not None and status.runbook else ""),
        f"target     {status.target or '-'}",
        f"attempts   {status.attempts}",
        f"alerts     {status.alerts_received} received, {'firing' if status.firing else 'not firing'}",
    ]
    if status.owner:
        lines.append(f"owner      {status.owner}")
    if status.pending_approval:
        pending = status.pending_approval
        until = f"; expires {pending.expires_at:%Y-%m-%d %H:%M:%S} UTC" if pending.expires_at else ""
        lines.append(f"approval   {pending.what} — {pending.reason} (requested by {pending.requested_by}{until})")
    lines.append("timeline")
    lines += [f"  {e.at:%Y-%m-%d %H:%M:%S} {e.kind:<12} {e.message}  [{e.actor}]" for e in status.timeline]
    return "\n".join(lines)
