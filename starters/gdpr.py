"""Data-subject requests from outside the workers: file one, list them, show one, steer one.

Filing writes the subject into the request vault (encrypted, under the policy's gdpr.storage) and
starts the request's one DataSubjectRequestWorkflow with the subject's pseudonym only, so workflow
history never holds an e-mail address or a user id. Steering is one Temporal update each, by
name, so `temporal workflow update execute --name deny` and the Web UI can do the same. Nothing
this module returns or raises carries the subject's identity.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.gdpr.workflow import UPDATE_CANCEL, UPDATE_DENY, UPDATE_EXTEND
from zerotouch.gdpr import DSR_WORKFLOW, GdprPolicy, add_months, dsr_workflow_id
from zerotouch.gdpr_models import REQUEST_ID, DsrInput, DsrReceipt, DsrStatus, RequestKind, Subject, VaultRef
from zerotouch.gdpr_vault import RequestVault, VaultConflict, VaultUnavailable
from zerotouch.names import QUERY_STATUS, UPDATE_APPROVE, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy

__all__ = ["UPDATE_APPROVE", "UPDATE_CANCEL", "UPDATE_DENY", "UPDATE_EXTEND", "Filed", "GdprError",
           "GdprMisconfigured", "Intake", "RequestRow", "RequestView", "Retrying", "file_request", "list_requests",
           "show_request", "steer", "subject_from"]

QUERY_TIMEOUT = timedelta(seconds=5)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._:/@-]{0,99}$"  # shown on the timeline and the receipt: one line, no markup


class GdprError(Exception):
    """A refusal a user can act on: a malformed subject or request id, an unknown request, a validator's no."""


class GdprMisconfigured(GdprError):
    """The request vault cannot be used here (no key, a wrong key, an unusable directory)."""


@dataclass(frozen=True)
class Filed:
    """A request's workflow, started now (``started``) or already filed under the same request id."""

    request_id: str
    workflow_id: str
    run_id: str
    started: bool


@dataclass(frozen=True)
class RequestRow:
    """One request as `zerotouch gdpr list` prints it."""

    request_id: str
    workflow_id: str
    kind: str
    state: str
    due_at: datetime | None
    outcome: str
    running: bool

    def as_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "workflow_id": self.workflow_id, "kind": self.kind,
                "state": self.state, "due_at": self.due_at.isoformat() if self.due_at else None,
                "outcome": self.outcome or None, "running": self.running}


@dataclass(frozen=True)
class Retrying:
    """An activity the workflow is waiting on, with its latest failure: which store, and why."""

    activity: str
    store: str
    attempt: int
    failure: str


@dataclass(frozen=True)
class RequestView:
    """One request: its live status while it runs, its receipt once it completed."""

    request_id: str
    workflow_id: str
    run_id: str
    execution: str  # RUNNING, COMPLETED, TERMINATED, ...
    params: DsrInput | None
    status: DsrStatus | None = None
    receipt: DsrReceipt | None = None
    retrying: list[Retrying] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "workflow_id": self.workflow_id, "run_id": self.run_id,
                "execution": self.execution.lower(),
                "status": self.status.model_dump(mode="json") if self.status else None,
                "receipt": self.receipt.model_dump(mode="json") if self.receipt else None,
                "retrying": [vars(r) for r in self.retrying]}


class Intake(BaseModel):
    """A request as a portal files it (the relay's POST /v1/gdpr/requests)."""

    model_config = ConfigDict(extra="forbid")

    kind: RequestKind
    email: str | None = Field(default=None, max_length=254)
    user_id: str | None = Field(default=None, max_length=128)
    verification: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")
    requested_by: str = Field(default="relay", pattern=_NAME)
    request_id: str | None = Field(default=None, pattern=REQUEST_ID)


def subject_from(*, email: str | None = None, user_id: str | None = None) -> Subject:
    """A validated Subject; GdprError names the field and what is wrong, never the value given."""
    try:
        return Subject(email=email, user_id=user_id)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "subject"
        raise GdprError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def new_request_id(now: datetime | None = None) -> str:
    return f"dsr-{(now or datetime.now(UTC)):%Y%m%d}-{secrets.token_hex(4)}"


def _checked_id(request_id: str) -> str:
    if not re.match(REQUEST_ID, request_id):
        raise GdprError("a request id is 3-63 lower-case letters, digits and dashes, starting with a letter or "
                        "digit")
    return request_id


def _record(gdpr: GdprPolicy, request_id: str, subject: Subject, state_dir: Path, environ: Mapping[str, str]) -> str:
    ref = VaultRef(storage=gdpr.storage, key_env=gdpr.key_env)
    try:
        return RequestVault.open(ref, state_dir, environ).record_subject(request_id, subject)
    except VaultUnavailable as error:
        raise GdprMisconfigured(str(error)) from None
    except VaultConflict as error:
        raise GdprError(str(error)) from None


async def file_request(client: Client, policy: Policy | GdprPolicy, *, kind: RequestKind, subject: Subject,
                       requested_by: str, verification: str, request_id: str | None = None, cluster: str = "",
                       state_dir: Path, environ: Mapping[str, str] = os.environ,
                       task_queue: str = WORKFLOWS_QUEUE) -> Filed:
    """Record the subject in the vault, then start the request's workflow; a request id already filed (running
    or over) is answered with that workflow, never a second one. ``policy``: the policy or its gdpr section."""
    request_id = _checked_id(request_id) if request_id else new_request_id()
    try:  # checked before the vault is touched; the pseudonym comes from the vault
        params = DsrInput(request_id=request_id, kind=kind, subject="0" * 64, requested_by=requested_by,
                          verification=verification, received_at=datetime.now(UTC), cluster=cluster)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False, include_context=False)[0]
        raise GdprError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    # The vault is files and fsyncs: off the event loop (the relay serves other requests meanwhile).
    gdpr = policy.gdpr if isinstance(policy, Policy) else policy
    pseudonym = await asyncio.to_thread(_record, gdpr, request_id, subject, Path(state_dir), environ)
    params = params.model_copy(update={"subject": pseudonym})
    workflow_id = dsr_workflow_id(request_id, cluster)
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            DSR_WORKFLOW, params, id=workflow_id, task_queue=queue_for(task_queue, cluster),
            # A request is handled once: a second filing of a request that is over must not run it again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError as error:
        return Filed(request_id=request_id, workflow_id=workflow_id, run_id=error.run_id or "", started=False)
    return Filed(request_id=request_id, workflow_id=workflow_id, run_id=handle.result_run_id or "", started=True)


# --- reading -------------------------------------------------------------------------------------------------


async def _input(client: Client, handle: WorkflowHandle[Any, Any]) -> DsrInput | None:
    async for event in handle.fetch_history_events():  # the first event is the start, with the input
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [value] = await client.data_converter.decode(payloads, [DsrInput])
            return value if isinstance(value, DsrInput) else None
        break
    return None


async def _status(handle: WorkflowHandle[Any, Any], history_length: int) -> DsrStatus | None:
    # Only a worker answers a query: before one ran the first task there is nothing to ask, and with the
    # workers down the query would hang until its deadline.
    if history_length <= 2:
        return None
    try:
        status: DsrStatus | None = await handle.query(
            QUERY_STATUS, result_type=DsrStatus | None, rpc_timeout=QUERY_TIMEOUT)  # type: ignore[arg-type]
    except (RPCError, WorkflowQueryFailedError):
        return None
    return status


async def _view(client: Client, workflow_id: str, cluster: str, run_id: str | None = None) -> RequestView:
    description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    handle = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    params = await _input(client, handle)
    view = RequestView(
        request_id=params.request_id if params else workflow_id.removeprefix(dsr_workflow_id("", cluster)),
        workflow_id=workflow_id, run_id=description.run_id,
        execution=description.status.name if description.status else "UNKNOWN", params=params)
    if description.status == WorkflowExecutionStatus.RUNNING:
        pending = list(description.raw_description.pending_activities)
        return replace(view, status=await _status(handle, description.history_length),
                       retrying=await _retrying(client, handle, pending) if pending else [])
    if description.status == WorkflowExecutionStatus.COMPLETED:
        receipt = client.get_workflow_handle(workflow_id, run_id=description.run_id, result_type=DsrReceipt)
        return replace(view, receipt=await receipt.result())
    return view


async def _retrying(client: Client, handle: WorkflowHandle[Any, Any], pending: list[Any]) -> list[Retrying]:
    """Each pending activity that failed before, with the store it works on (from its scheduled input)."""
    failed = {p.activity_id: p for p in pending if p.HasField("last_failure")}
    if not failed:
        return []
    stores: dict[str, str] = {}
    async for event in handle.fetch_history_events():
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        scheduled = event.activity_task_scheduled_event_attributes
        if scheduled.activity_id in failed and scheduled.input.payloads:
            # A StoreStep names its store; other activities' inputs are decoded only for the name.
            [value] = await client.data_converter.decode(scheduled.input.payloads[:1])
            stores[scheduled.activity_id] = str(value.get("store_name", "")) if isinstance(value, dict) else ""
    return [Retrying(activity=p.activity_type.name, store=stores.get(activity_id, ""), attempt=p.attempt,
                     failure=p.last_failure.message)
            for activity_id, p in failed.items()]


async def list_requests(client: Client, cluster: str = "", limit: int = 200) -> list[RequestRow]:
    """The requests of ``cluster`` (newest first): what each is, where it stands, when it is due."""
    query = f'WorkflowType="{DSR_WORKFLOW}" AND TaskQueue="{queue_for(WORKFLOWS_QUEUE, cluster)}"'
    found = []
    async for execution in client.list_workflows(query, limit=limit):
        view = await _view(client, execution.id, cluster, execution.run_id)
        found.append(_row(view))
    return found


def _row(view: RequestView) -> RequestRow:
    kind = view.params.kind if view.params else "-"
    due = add_months(view.params.received_at, 1) if view.params else None
    running = view.execution == "RUNNING"
    if view.receipt is not None:
        return RequestRow(view.request_id, view.workflow_id, view.receipt.kind, "done", view.receipt.due_at,
                          view.receipt.outcome, running)
    if view.status is not None:
        return RequestRow(view.request_id, view.workflow_id, view.status.kind, view.status.state,
                          view.status.due_at, view.status.outcome, running)
    state = "starting" if running else view.execution.lower()
    return RequestRow(view.request_id, view.workflow_id, kind, state, due, "", running)


async def show_request(client: Client, request_id: str, cluster: str = "") -> RequestView:
    """The request's status (while it runs) or receipt (once completed), and what is being retried and why."""
    workflow_id = dsr_workflow_id(_checked_id(request_id), cluster)
    try:
        return await _view(client, workflow_id, cluster)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise GdprError(f"no request {request_id} (see `zerotouch gdpr list`)") from None
        raise


# --- steering ------------------------------------------------------------------------------------------------


async def steer(client: Client, request_id: str, update: str, argument: BaseModel, cluster: str = "") -> str:
    """Send ``update`` (approve, deny, cancel, extend) to the request; a validator's refusal becomes a GdprError."""
    handle = client.get_workflow_handle(dsr_workflow_id(_checked_id(request_id), cluster))
    try:
        answer: str = await handle.execute_update(update, argument, result_type=str)
        return answer
    except WorkflowUpdateFailedError as error:
        cause: Any = error.cause
        raise GdprError(f"{request_id}: {getattr(cause, 'message', None) or cause}") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise GdprError(await _why_not_found(client, handle, request_id)) from None
        raise


async def _why_not_found(client: Client, handle: WorkflowHandle[Any, Any], request_id: str) -> str:
    try:
        description = await handle.describe()
    except RPCError:
        return f"no request {request_id} (see `zerotouch gdpr list`)"
    state = description.status.name.lower() if description.status else "closed"
    if description.status == WorkflowExecutionStatus.COMPLETED:
        done = client.get_workflow_handle(handle.id, run_id=description.run_id, result_type=DsrReceipt)
        state = (await done.result()).outcome
    return f"request {request_id} is over ({state}); nothing can change it now"
