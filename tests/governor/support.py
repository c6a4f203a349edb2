"""Running a Governor for one test: a worker on the cluster's workflow queue and a handle."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from workflows.governor import GovernorWorkflow
from zerotouch.activity_names import GOVERNOR_SETTINGS, queue_of
from zerotouch.governor_client import ensure_governor, execute_grant
from zerotouch.governor_models import (
    UPDATE_SETTINGS,
    GovernorAck,
    GovernorSettings,
    GrantDecision,
    GrantRequest,
)
from zerotouch.models import PolicyRequest
from zerotouch.names import WORKFLOWS_QUEUE, queue_for


def new_cluster() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


class WorkersPolicy:
    """What the workers' policy file says about the Governor's limits, for one test.

    The Governor takes its settings only from the `governor_settings` activity, which reads the
    policy file in production; a test sets them here (and changes them, as an edited file would).
    """

    def __init__(self, settings: GovernorSettings | None = None) -> None:
        self.settings = settings or GovernorSettings()

    @activity.defn(name=GOVERNOR_SETTINGS)
    async def governor_settings(self, _request: PolicyRequest) -> GovernorSettings:
        return self.settings


@contextlib.asynccontextmanager
async def governor_worker(client: Client, cluster: str, policy: WorkersPolicy | None = None) -> AsyncIterator[None]:
    """The Governor's worker and, on the observe queue, the activity that reads the workers' policy."""
    policy = policy or WorkersPolicy()
    async with (
        Worker(client, task_queue=queue_for(WORKFLOWS_QUEUE, cluster), workflows=[GovernorWorkflow]),
        Worker(client, task_queue=queue_for(queue_of(GOVERNOR_SETTINGS), cluster),
               activities=[policy.governor_settings]),
    ):
        yield


@contextlib.asynccontextmanager
async def running_governor(
    client: Client, settings: GovernorSettings, *, cluster: str | None = None, continue_as_new_after: int = 500
) -> AsyncIterator[tuple[str, WorkflowHandle[Any, Any]]]:
    cluster = cluster or new_cluster()
    async with governor_worker(client, cluster, WorkersPolicy(settings)):
        handle = await ensure_governor(client, cluster, settings, continue_as_new_after=continue_as_new_after)
        try:
            yield cluster, handle
        finally:
            # Terminating while the worker holds a workflow task leaks a time-skipping lock in the
            # test server (later sleeps then wait in real time); an update returns only after its
            # task completed, so the Governor is idle when it is terminated.
            await handle.execute_update(UPDATE_SETTINGS, settings, result_type=GovernorAck)
            await handle.terminate("test over")


async def ask(handle: WorkflowHandle[Any, Any], request: GrantRequest) -> GrantDecision:
    return await execute_grant(handle, request)


async def replay_and_record_governor(client: Client, workflow_id: str, run_id: str | None, name: str) -> None:
    """Replay one Governor run against today's code; with ZEROTOUCH_RECORD_HISTORIES=1 keep it as golden."""
    import os

    from temporalio.worker import Replayer

    from tests.support.zt import HISTORIES
    from zerotouch.temporal import data_converter

    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    await Replayer(workflows=[GovernorWorkflow], data_converter=data_converter()).replay_workflow(history)
    if os.environ.get("ZEROTOUCH_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())
