"""ScheduledRotationWorkflow: a schedule's run starts the Secret's one rotation workflow.

A Temporal Schedule appends the scheduled time to the IDs it starts, so it cannot start the
per-Secret `SecretRotationWorkflow` itself; this run does, under the Secret's ID. A rotation of the
same Secret still running (an emergency one, or one waiting for approval) makes this run a no-op.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch.rotation_models import RotationResult
    from zerotouch.rotations import (
        ROTATION_WORKFLOW,
        SCHEDULED_ROTATION_WORKFLOW,
        RotationInput,
        ScheduledRotationInput,
        rotation_workflow_id,
    )

from workflows.scheduled_job.workflow import scheduled_time
from workflows.secret_rotation import calls


@workflow.defn(name=SCHEDULED_ROTATION_WORKFLOW)
class ScheduledRotationWorkflow:
    @workflow.run
    async def run(self, params: ScheduledRotationInput) -> RotationResult | None:
        """Start the Secret's rotation (or find one running) and wait for it."""
        policy = await calls.load_policy(params.cluster)
        name = params.arguments.rotation
        rotation = policy.rotations.secrets.get(name)
        if rotation is None:
            raise ApplicationError(f"schedule {params.schedule}: no rotation {name!r} in the policy",
                                   type="UnknownRotation", non_retryable=True)
        child_id = rotation_workflow_id(rotation.secret, params.cluster)
        try:
            handle = await workflow.start_child_workflow(
                ROTATION_WORKFLOW,
                RotationInput(rotation=name, cluster=params.cluster, requested_by=f"schedule {params.schedule}",
                              reason="scheduled rotation", scheduled_time=scheduled_time(params)),
                id=child_id, task_queue=workflow.info().task_queue, result_type=RotationResult,
                # The rotation outlives this run if the schedule's run is cut short: a rotation half-way
                # must finish or roll back, never be cancelled between two steps by a schedule.
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("rotation %s is already running as %s; this scheduled run does nothing",
                                 name, child_id)
            return None
        result: RotationResult = await handle
        return result
