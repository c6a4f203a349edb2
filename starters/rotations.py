"""Operating secret rotations: where each stands, and starting or steering its one workflow.

A rotation's state has three homes and this module reads each where it lives: versions, ages and
stage in its Secret's annotations (Kubernetes), the next scheduled run in its Temporal Schedule,
and the running `SecretRotationWorkflow` (one per Secret) by its `status` query. Starting and
steering are one Temporal call each, by name, so `temporal workflow update execute --name rollback`
and the Web UI can do the same. No credential value is read into anything this module returns.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from zerotouch.names import QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy
from zerotouch.rotation_models import RollbackInput, RotationStatus, RotationView
from zerotouch.rotation_secret import SecretContent, view
from zerotouch.rotations import (
    ROTATION_NAME,
    ROTATION_WORKFLOW,
    SCHEDULED_ROTATION_WORKFLOW,
    UPDATE_ROLLBACK,
    Rotation,
    RotationInput,
    RotationsPolicy,
    SecretRef,
    rotation_workflow_id,
)
from zerotouch.schedules import schedule_id

SCANNER = "secret-scanner"
QUERY_TIMEOUT = timedelta(seconds=5)
_SOURCE = r"^[A-Za-z0-9][A-Za-z0-9 ._:/@-]{0,99}$"  # shown on the timeline and in the ledger: no markup, no newlines


class RotationError(Exception):
    """A refusal a user can act on: an unknown rotation, none running, a validator's no."""


class SecretReader(Protocol):
    """`activities.secret_store.SecretStore`, or anything that reads a Secret the same way."""

    def read(self, ref: SecretRef) -> SecretContent: ...


@dataclass(frozen=True)
class Running:
    """The Secret's rotation workflow while it runs; ``status`` is None until its first task ran."""

    workflow_id: str
    run_id: str
    status: RotationStatus | None


@dataclass(frozen=True)
class RotationRow:
    """One rotation as `zerotouch secrets list` and `show` print it."""

    name: str
    kind: str
    secret: SecretRef
    view: RotationView | None
    unreadable: str  # why the Secret could not be read, when it could not
    next_run: datetime | None
    running: Running | None

    def as_json(self) -> dict[str, Any]:
        running = self.running
        return {
            "name": self.name, "kind": self.kind, "secret": self.secret.describe(),
            "state": self.view.model_dump(mode="json", exclude={"secret"}) if self.view else None,
            "unreadable": self.unreadable or None,
            "next_scheduled_rotation": self.next_run.isoformat() if self.next_run else None,
            "running": None if running is None else {
                "workflow_id": running.workflow_id, "run_id": running.run_id,
                "status": running.status.model_dump(mode="json") if running.status else None},
        }


@dataclass(frozen=True)
class Started:
    """A rotation workflow that was started now (``started``) or was already running under the Secret's ID."""

    workflow_id: str
    run_id: str
    started: bool


def rotation_of(rotations: RotationsPolicy, name: str) -> Rotation:
    found = rotations.secrets.get(name)
    if found is None:
        known = ", ".join(sorted(rotations.secrets)) or "none"
        raise RotationError(f"no rotation {name!r} in the policy's rotations.secrets (known: {known})")
    return found


def rotation_for_secret(rotations: RotationsPolicy, secret: SecretRef) -> str | None:
    """The name of the rotation that owns ``secret`` (at most one: the policy refuses two)."""
    return next((name for name, rotation in rotations.secrets.items() if rotation.secret == secret), None)


def read_view(reader: SecretReader, rotation: Rotation) -> tuple[RotationView | None, str]:
    """The Secret's rotation state, or why the API refused to show it (a 403, a 500)."""
    try:
        return view(rotation.secret, reader.read(rotation.secret), rotation.target), ""
    except ApplicationError as error:  # the API answered, with an error the store mapped (never data)
        return None, str(error)
    except OSError as error:  # includes urllib3's connection errors: no API to ask at all
        raise RotationError(f"cannot reach the Kubernetes API to read Secret {rotation.secret.describe()}: "
                            f"{type(error).__name__}; pass --kubernetes-url or check the kubeconfig") from None


async def next_runs(client: Client, policy: Policy, cluster: str = "") -> dict[str, datetime]:
    """The next action time of each rotation's Temporal Schedule(s); a rotation without one is absent."""
    from starters.schedules import describe

    found: dict[str, datetime] = {}
    for declaration in policy.schedules:
        if declaration.workflow != SCHEDULED_ROTATION_WORKFLOW:
            continue
        rotation = str(declaration.arguments.get("rotation", ""))
        description = await describe(client, schedule_id(declaration.name, cluster))
        if description is None or description.schedule.state.paused or not description.info.next_action_times:
            continue
        when = min(description.info.next_action_times)
        if rotation not in found or when < found[rotation]:
            found[rotation] = when
    return found


async def running(client: Client, workflow_id: str) -> Running | None:
    """The rotation workflow under ``workflow_id`` if one runs, with its status."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    status = None
    # Only a worker answers a query: before one ran the first task (started, scheduled) there is nothing
    # to ask, and with the workers down the query would hang until its deadline.
    if description.history_length > 2:
        try:
            status = await handle.query(QUERY_STATUS, result_type=RotationStatus | None,  # type: ignore[arg-type]
                                        rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError):
            status = None
    return Running(workflow_id=workflow_id, run_id=description.run_id, status=status)


async def rows(client: Client, policy: Policy, reader: SecretReader, cluster: str = "",
               names: list[str] | None = None) -> list[RotationRow]:
    """``names`` (default: every rotation in the policy), each with its Secret, schedule and running workflow."""
    wanted = names if names is not None else sorted(policy.rotations.secrets)
    rotations = {name: rotation_of(policy.rotations, name) for name in wanted}
    schedule_times = await next_runs(client, policy, cluster)
    out = []
    for name, rotation in rotations.items():
        # The kubernetes client blocks: off the loop, one Secret at a time (a handful per policy).
        secret_view, unreadable = await asyncio.to_thread(read_view, reader, rotation)
        out.append(RotationRow(
            name=name, kind=rotation.target.kind, secret=rotation.secret, view=secret_view, unreadable=unreadable,
            next_run=schedule_times.get(name),
            running=await running(client, rotation_workflow_id(rotation.secret, cluster))))
    return out


async def start(client: Client, rotations: RotationsPolicy, name: str, cluster: str = "", *,
                action: Literal["rotate", "rollback"] = "rotate", requested_by: str, reason: str,
                emergency: bool = False, task_queue: str = WORKFLOWS_QUEUE) -> Started:
    """Start the Secret's rotation workflow; one already running is answered instead (never a second)."""
    rotation = rotation_of(rotations, name)
    workflow_id = rotation_workflow_id(rotation.secret, cluster)
    params = RotationInput(rotation=name, action=action, cluster=cluster, requested_by=requested_by,
                           reason=reason, emergency=emergency)
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            ROTATION_WORKFLOW, params, id=workflow_id, task_queue=queue_for(task_queue, cluster))
    except WorkflowAlreadyStartedError as error:
        return Started(workflow_id=workflow_id, run_id=error.run_id or "", started=False)
    return Started(workflow_id=workflow_id, run_id=handle.result_run_id or "", started=True)


async def steer(client: Client, rotations: RotationsPolicy, name: str, update: str, argument: BaseModel,
                cluster: str = "") -> str:
    """Send ``update`` to the running rotation of ``name``; its validator's refusal becomes a RotationError."""
    workflow_id = rotation_workflow_id(rotation_of(rotations, name).secret, cluster)
    handle = client.get_workflow_handle(workflow_id)
    try:
        answer: str = await handle.execute_update(update, argument, result_type=str)
        return answer
    except WorkflowUpdateFailedError as error:
        cause: Any = error.cause
        raise RotationError(f"{name}: {getattr(cause, 'message', None) or cause}") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise RotationError(f"no rotation of {name} is running (see `zerotouch secrets show {name}`)") from None
        raise


async def rollback(client: Client, rotations: RotationsPolicy, name: str, by: str, reason: str,
                   cluster: str = "") -> tuple[str, Started | None]:
    """Roll the running rotation back, or start one whose only job is to roll back (then its Started)."""
    rotation = rotation_of(rotations, name)
    if await running(client, rotation_workflow_id(rotation.secret, cluster)) is not None:
        return await steer(client, rotations, name, UPDATE_ROLLBACK, RollbackInput(by=by, reason=reason), cluster), None
    started = await start(client, rotations, name, cluster, action="rollback", requested_by=by, reason=reason)
    if not started.started:  # one started between our look and our start: steer that one instead
        return await steer(client, rotations, name, UPDATE_ROLLBACK, RollbackInput(by=by, reason=reason), cluster), None
    return f"rollback started by {by}", started


# --- a leak report (the relay's POST /v1/secrets/leaked) --------------------------------------------------------


class LeakReport(BaseModel):
    """A credential reported leaked: which rotation (by name or by its Secret), why, and who says so."""

    model_config = ConfigDict(extra="forbid")

    rotation: str | None = Field(default=None, pattern=ROTATION_NAME)
    secret: SecretRef | None = None
    reason: str = Field(default="credential reported leaked", min_length=1, max_length=500)
    source: str = Field(default=SCANNER, pattern=_SOURCE, description="who reports it (a scanner's name)")

    @model_validator(mode="after")
    def _one_target(self) -> LeakReport:
        if (self.rotation is None) == (self.secret is None):
            raise ValueError("name either `rotation` or `secret` ({namespace, name}), not both or neither")
        if re.search(r"[\x00-\x1f\x7f]", self.reason):
            raise ValueError("`reason` must be one line without control characters")
        return self

    def rotation_name(self, rotations: RotationsPolicy) -> str:
        """The rotation reported; RotationError when the policy has none for it."""
        if self.rotation is not None:
            rotation_of(rotations, self.rotation)
            return self.rotation
        assert self.secret is not None
        name = rotation_for_secret(rotations, self.secret)
        if name is None:
            raise RotationError(f"no rotation in the policy rotates Secret {self.secret.describe()}")
        return name
