"""Steering the Governor from outside: start it, pause and resume automation, set the mode, read trust.

Each is one Temporal call by name, so `temporal workflow update execute --name pause ...`
against `governor-<cluster>` does the same.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from zerotouch import approval_proofs
from zerotouch.approval_proofs import ApprovalProof, Wanted
from zerotouch.governor_models import (
    GOVERNOR_WORKFLOW,
    QUERY_GOVERNOR_STATUS,
    SETTINGS_NOT_FROM_POLICY,
    UPDATE_CLOSE_BREAKER,
    UPDATE_PAUSE,
    UPDATE_REQUEST_GRANT,
    UPDATE_RESUME,
    UPDATE_SET_MODE,
    UPDATE_SETTINGS,
    BreakerCloseInput,
    GovernorAck,
    GovernorInput,
    GovernorSettings,
    GovernorStatus,
    GrantDecision,
    GrantRequest,
    ModeInput,
    PauseInput,
    ResumeInput,
    TrustRow,
    governor_id,
)
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Mode


class GovernorError(Exception):
    """A refusal a user can act on (not paused, no such breaker, Governor not running)."""


class SettingsRefused(GovernorError):
    """The Governor refused settings that are not what the workers' policy says."""


async def ensure_governor(
    client: Client, cluster: str, settings: GovernorSettings, *, continue_as_new_after: int = 500
) -> WorkflowHandle[Any, Any]:
    """Start the cluster's Governor, or return the running one (its settings are left as they are)."""
    return await client.start_workflow(
        GOVERNOR_WORKFLOW,
        GovernorInput(settings=settings, cluster=cluster, continue_as_new_after=continue_as_new_after),
        id=governor_id(cluster),
        task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


# A Governor just started reads its settings (approvers, keys) before it lets anyone loosen a
# guardrail: the validator says "SettingsLoading" for that moment, and the client asks again.
_SETTINGS_LOADING = "SettingsLoading"
_SETTINGS_WAIT = timedelta(seconds=30)


async def _update(client: Client, cluster: str, name: str, argument: BaseModel) -> GovernorAck:
    handle = client.get_workflow_handle(governor_id(cluster))
    deadline = asyncio.get_running_loop().time() + _SETTINGS_WAIT.total_seconds()
    while True:
        try:
            ack: GovernorAck = await handle.execute_update(name, argument, result_type=GovernorAck)
            return ack
        except WorkflowUpdateFailedError as error:
            cause: Any = error.cause
            kind = getattr(cause, "type", None)
            if kind == _SETTINGS_LOADING and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
                continue
            refusal = SettingsRefused if kind == SETTINGS_NOT_FROM_POLICY else GovernorError
            raise refusal(getattr(cause, "message", None) or str(cause)) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise GovernorError(_not_running(cluster)) from None
            raise


_TRANSIENT = (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE)
# The workflow task that would have run the update failed before accepting it (WorkflowNotReadyFailure):
# 143 times in a storm served by 4 worker processes (BENCHMARKS.md 3b), each costing an activity retry
# with back-off. Asking again is safe, as for the statuses above: the request_id makes it idempotent.
_TASK_FAILED = "unexpected workflow task failure"


def _retryable(error: RPCError) -> bool:
    return error.status in _TRANSIENT or (
        error.status == RPCStatusCode.FAILED_PRECONDITION and _TASK_FAILED in error.message)


async def execute_grant(
    handle: WorkflowHandle[Any, Any], request: GrantRequest, *, attempts: int = 60,
    attempt_timeout: timedelta = timedelta(seconds=5),
) -> GrantDecision:
    """Ask for a grant, retrying while the server cannot answer for a moment.

    Around a continue-as-new the server answers RESOURCE_EXHAUSTED ("workflow is closing",
    also: too many updates in flight) or UNAVAILABLE ("update was aborted"), FAILED_PRECONDITION when the
    workflow task that would have run the update failed, and an update
    completed in the same task as the continue-as-new may never be answered at all
    (temporalio/temporal#6375), hence the timeout per attempt. Retrying is safe: a granted
    request_id gets its grant again and never a second one; refusals consume nothing.
    """
    delay = 0.02
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            decision: GrantDecision = await handle.execute_update(
                UPDATE_REQUEST_GRANT, request, result_type=GrantDecision, rpc_timeout=attempt_timeout)
            return decision
        except RPCError as error:
            if not _retryable(error) or last:
                raise
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            task = asyncio.current_task()
            if last or (task is not None and task.cancelling()):
                raise  # our caller was cancelled: stop, do not retry
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)
    raise AssertionError("unreachable")


def _not_running(cluster: str) -> str:
    return f"no Governor {governor_id(cluster)!r} is running; start zerotouch (`zerotouch up`) first"


async def pause(client: Client, cluster: str, by: str, reason: str, duration: timedelta) -> GovernorAck:
    """The kill switch: no automated action until `duration` passes or someone resumes."""
    return await _update(client, cluster, UPDATE_PAUSE,
                         PauseInput(by=by, reason=reason, duration_seconds=duration.total_seconds()))


async def resume(client: Client, cluster: str, by: str, note: str = "", *,
                 proof: ApprovalProof | None = None) -> GovernorAck:
    return await _update(client, cluster, UPDATE_RESUME, ResumeInput(by=by, note=note, proof=proof))


async def set_mode(client: Client, cluster: str, mode: Mode, by: str, reason: str = "", *,
                   proof: ApprovalProof | None = None) -> GovernorAck:
    return await _update(client, cluster, UPDATE_SET_MODE, ModeInput(by=by, mode=mode, reason=reason, proof=proof))


async def close_breaker(client: Client, cluster: str, runbook: str, by: str, note: str = "", *,
                        proof: ApprovalProof | None = None) -> GovernorAck:
    return await _update(client, cluster, UPDATE_CLOSE_BREAKER,
                         BreakerCloseInput(by=by, runbook=runbook, note=note, proof=proof))


async def wanted_proof(client: Client, cluster: str, decision: str, by: str, runbook: str = "") -> Wanted:
    """The claim a loosening decision's proof must sign, read off the Governor's state now."""
    status = await governor_status(client, cluster)
    if decision == approval_proofs.RESUME:
        if status.paused_until is None:
            raise GovernorError("automation is not paused; nothing to resume")
        request = approval_proofs.resume_request(status.paused_until)
    elif decision == approval_proofs.MODE_AUTO:
        request = approval_proofs.mode_request(status.mode)
    else:
        row = next((b for b in status.breakers if b.runbook == runbook and b.open), None)
        if row is None:
            raise GovernorError(f"the breaker for runbook {runbook!r} is not open")
        request = approval_proofs.breaker_request(runbook, row.opened_at)
    return Wanted(governor_id(cluster), request, decision, by)


async def update_settings(client: Client, cluster: str, settings: GovernorSettings) -> GovernorAck:
    """Ask the Governor to take `settings`; it does only if they are the workers' policy (SettingsRefused)."""
    return await _update(client, cluster, UPDATE_SETTINGS, settings)


async def governor_status(client: Client, cluster: str) -> GovernorStatus:
    handle = client.get_workflow_handle(governor_id(cluster))
    try:
        status: GovernorStatus = await handle.query(QUERY_GOVERNOR_STATUS, result_type=GovernorStatus)
        return status
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise GovernorError(_not_running(cluster)) from None
        raise


async def trust_table(client: Client, cluster: str) -> list[TrustRow]:
    return (await governor_status(client, cluster)).trust


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def render_trust(rows: list[TrustRow]) -> str:
    if not rows:
        return "no verified outcomes yet: every runbook starts from the prior"
    return _table(
        ("RUNBOOK", "ALERT", "OK", "FAILED", "CONFIDENCE", "LEVEL"),
        [(r.runbook, r.alert_class or "-", str(r.successes), str(r.failures), f"{r.confidence:.2f}", r.level)
         for r in rows],
    )


def render_status(status: GovernorStatus) -> str:
    lines = [f"mode       {status.mode}"]
    if status.paused_until is not None:
        lines.append(f"paused     until {status.paused_until:%Y-%m-%d %H:%M:%S} by {status.paused_by}: "
                     f"{status.pause_reason}")
    lines.append(f"rate       {status.rate_used}/{status.rate_limit} in the last minute")
    in_flight = ", ".join(f"{ns}={n}" for ns, n in status.in_flight.items()) or "none"
    lines.append(f"in flight  {in_flight}")
    for row in status.cooldowns:
        lines.append(f"cooldown   {row.key} until {row.until:%H:%M:%S}")
    for breaker in status.breakers:
        state = f"OPEN since {breaker.opened_at:%Y-%m-%d %H:%M:%S}" if breaker.open and breaker.opened_at else \
            f"closed ({breaker.recent_failures} recent failures)"
        lines.append(f"breaker    {breaker.runbook}: {state}")
    for lease in status.node_leases:
        lines.append(f"node lease {lease.node} held by {lease.holder} until {lease.expires_at:%H:%M:%S}")
    budget = status.budget
    if budget.monthly is not None:
        projected = "-" if budget.projected is None else f"€{budget.projected:.2f} ({budget.percent}%)"
        lines.append(f"budget     {projected} of €{budget.monthly:.2f} per month")
    lines.append(render_trust(status.trust))
    return "\n".join(lines)
