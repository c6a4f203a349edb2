"""Starting a drill for `zerotouch drill run`: one workflow per run, named after the drill and its start."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowFailureError

from zerotouch.drill_models import DRILL_WORKFLOW, DrillInput, DrillResult, drill_workflow_id
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy


class DrillError(Exception):
    """A drill could not be started or did not finish; the message says why and what to do."""


async def start_drill(client: Client, policy: Policy, name: str, *, cluster: str = "", requested_by: str = "",
                      wait: bool = False) -> tuple[str, DrillResult | None]:
    """Start the policy's drill `name`; with `wait`, also its result. Returns (workflow ID, result)."""
    try:
        policy.drills.named(name)
    except KeyError as error:
        raise DrillError(f"{error.args[0]}; add it under drills: in the policy") from None
    workflow_id = drill_workflow_id(name, datetime.now(UTC))
    handle = await client.start_workflow(
        DRILL_WORKFLOW, DrillInput(name=name, cluster=cluster, requested_by=requested_by), id=workflow_id,
        task_queue=queue_for(WORKFLOWS_QUEUE, cluster), result_type=DrillResult)
    if not wait:
        return workflow_id, None
    try:
        return workflow_id, await handle.result()
    except WorkflowFailureError as error:
        raise DrillError(f"drill {workflow_id} failed: {error.cause or error}") from None
