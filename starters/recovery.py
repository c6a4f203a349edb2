"""Starting, finding and steering recoveries (node, database, namespace) for `zerotouch recovery`.

Everything here goes through the contract in `zerotouch.recovery`: the workflow names, the input
models, `recovery_id`, and the `recovery_status` query, so the three workflows are read alike.
A dry run gets an ID of its own (the real ID plus ``-plan-<random>``), so planning never blocks,
nor is blocked by, the one real recovery of the same node, database or namespace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.recovery import (
    DATABASE_FAILOVER_WORKFLOW,
    NAMESPACE_RESTORE_WORKFLOW,
    NODE_RECOVERY_WORKFLOW,
    QUERY_RECOVERY_STATUS,
    RECOVERY_WORKFLOWS,
    DatabaseFailoverInput,
    NamespaceRestoreInput,
    NodeRecoveryInput,
    RecoveryKind,
    RecoveryStatus,
    recovery_id,
)

RecoveryInput = NodeRecoveryInput | DatabaseFailoverInput | NamespaceRestoreInput
QUERY_TIMEOUT = timedelta(seconds=5)
DRY_RUN_MARK = "-plan-"
_KINDS: dict[str, RecoveryKind] = {NODE_RECOVERY_WORKFLOW: "node", DATABASE_FAILOVER_WORKFLOW: "database",
                                    NAMESPACE_RESTORE_WORKFLOW: "namespace"}


class RecoveryError(Exception):
    """A recovery could not be started, found or steered; the message says why and what to do."""


@dataclass(frozen=True)
class Started:
    workflow_id: str
    run_id: str
    started: bool  # False: one was already running under that ID (it is not started twice)


@dataclass(frozen=True)
class RecoveryRow:
    """One recovery as `list` and `show` print it: from its status query (running) or its result (closed)."""

    workflow_id: str
    kind: str
    started_at: datetime | None
    closed_at: datetime | None
    execution: str  # Temporal's: running, completed, failed, terminated, ...
    status: RecoveryStatus | None

    @property
    def target(self) -> str:
        return self.status.target if self.status else "-"

    @property
    def stage(self) -> str:
        if self.status is not None:
            return self.status.stage
        return "starting" if self.execution == "running" else self.execution

    def as_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "kind": self.kind, "target": self.target, "stage": self.stage,
                "execution": self.execution, "started_at": self.started_at, "closed_at": self.closed_at,
                "status": self.status.model_dump(mode="json") if self.status else None}


def target_of(params: RecoveryInput) -> tuple[str, str, str]:
    """(workflow type, workflow ID, cluster) of a recovery's input; InvalidName for a name Kubernetes refuses."""
    if isinstance(params, NodeRecoveryInput):
        require_object_name(params.node, "node")
        return NODE_RECOVERY_WORKFLOW, recovery_id("node", params.cluster, params.node), params.cluster
    if isinstance(params, DatabaseFailoverInput):
        require_object_name(params.database, "database")
        return (DATABASE_FAILOVER_WORKFLOW, recovery_id("database", params.cluster, params.database),
                params.cluster)
    require_namespace(params.namespace)
    if params.into_namespace:
        require_namespace(params.into_namespace)
    if params.backup_id:
        require_object_name(params.backup_id.lower(), "backup")
    return (NAMESPACE_RESTORE_WORKFLOW, recovery_id("namespace", params.cluster, params.into_namespace or
                                                    params.namespace), params.cluster)


async def start_recovery(client: Client, input_model: RecoveryInput, *, dry_run_id: bool = False) -> Started:
    """Start the recovery ``input_model`` describes; one running under its ID is answered instead (never twice).

    ``dry_run_id``: run it under an ID of its own (the plan of ``zerotouch recovery plan``), which
    requires ``input_model.dry_run``: a real recovery always runs under its one ID."""
    if dry_run_id and not input_model.dry_run:
        raise ValueError("a distinct dry-run ID is only for dry runs")
    try:
        workflow, workflow_id, cluster = target_of(input_model)
    except InvalidName as error:
        raise RecoveryError(str(error)) from None
    if dry_run_id:
        workflow_id = f"{workflow_id}{DRY_RUN_MARK}{uuid.uuid4().hex[:8]}"
    try:
        handle = await client.start_workflow(workflow, input_model, id=workflow_id,
                                             task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
    except WorkflowAlreadyStartedError as error:
        return Started(workflow_id=workflow_id, run_id=error.run_id or "", started=False)
    return Started(workflow_id=workflow_id, run_id=handle.result_run_id or "", started=True)


async def result_of(client: Client, workflow_id: str) -> RecoveryStatus:
    """Wait for the recovery to end and answer its final status."""
    try:
        raw = await client.get_workflow_handle(workflow_id).result()
    except WorkflowFailureError as error:
        raise RecoveryError(f"{workflow_id} failed: {error.cause or error}") from None
    return RecoveryStatus.model_validate(raw)


async def _row(client: Client, execution: WorkflowExecution) -> RecoveryRow:
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    state = execution.status.name.lower() if execution.status else "unknown"
    status: RecoveryStatus | None = None
    try:
        if execution.status == WorkflowExecutionStatus.RUNNING:
            # Only a worker answers a query: before the first task ran there is nothing to ask (and a listing
            # does not carry the history length, so ask the execution itself).
            if (await handle.describe()).history_length > 2:
                raw = await handle.query(QUERY_RECOVERY_STATUS, rpc_timeout=QUERY_TIMEOUT)
                status = RecoveryStatus.model_validate(raw) if raw else None
        elif execution.status == WorkflowExecutionStatus.COMPLETED:
            status = RecoveryStatus.model_validate(await handle.result())
    except (RPCError, WorkflowQueryFailedError, WorkflowFailureError):
        status = None
    return RecoveryRow(workflow_id=execution.id, kind=_KINDS.get(execution.workflow_type, execution.workflow_type),
                       started_at=execution.start_time, closed_at=execution.close_time, execution=state,
                       status=status)


async def list_recoveries(client: Client, limit: int = 50) -> list[RecoveryRow]:
    """Running and past recoveries of every kind, newest first (Temporal's visibility lags by a moment)."""
    query = " OR ".join(f"WorkflowType = '{name}'" for name in RECOVERY_WORKFLOWS)
    found = [execution async for execution in client.list_workflows(query, limit=limit)]
    found.sort(key=lambda e: e.start_time, reverse=True)
    return [await _row(client, execution) for execution in found[:limit]]


async def find(client: Client, reference: str, *, running: bool = False) -> RecoveryRow:
    """A recovery by workflow ID, else the newest (``running``: the running) one whose target is ``reference``."""
    if reference.startswith("zerotouch-recovery-"):
        try:
            description = await client.get_workflow_handle(reference).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise RecoveryError(f"no recovery {reference} (see `zerotouch recovery list`)") from None
            raise
        return await _row(client, description)
    for row in await list_recoveries(client, limit=200):
        if row.target == reference and (row.execution == "running" or not running):
            return row
    raise RecoveryError(f"no recovery of {reference!r} (give a workflow ID or a node, database or namespace; "
                        "see `zerotouch recovery list`)")


async def pending_request(client: Client, reference: str) -> tuple[str, str]:
    """(workflow ID, request ID) of the approval the running recovery waits for: what a signed proof is bound to."""
    row = await find(client, reference, running=True)
    status = row.status
    if row.execution != "running":
        raise RecoveryError(f"{row.workflow_id} is over ({row.stage}); nothing to approve")
    if status is None or status.approval != "pending":
        raise RecoveryError(f"{row.workflow_id}: nothing awaits approval (see `zerotouch recovery show "
                            f"{row.workflow_id}`)")
    if not status.approval_request:  # a worker from before signed recovery approvals runs it
        raise RecoveryError(f"{row.workflow_id} does not name the request to sign; upgrade its workers, or approve "
                            "it in a policy that asserts identity")
    return row.workflow_id, status.approval_request


async def steer(client: Client, reference: str, update: str, argument: BaseModel) -> tuple[str, str]:
    """Send ``update`` (approve, abort) to the running recovery; its validator's refusal becomes a RecoveryError."""
    row = await find(client, reference, running=True)
    if row.execution != "running":
        raise RecoveryError(f"{row.workflow_id} is over ({row.stage}); nothing to {update}")
    try:
        answer: str = await client.get_workflow_handle(row.workflow_id).execute_update(update, argument,
                                                                                        result_type=str)
    except WorkflowUpdateFailedError as error:
        cause: Any = error.cause
        raise RecoveryError(f"{row.workflow_id}: {getattr(cause, 'message', None) or cause}") from None
    return row.workflow_id, answer
