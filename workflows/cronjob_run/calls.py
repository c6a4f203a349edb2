"""The activity calls of imported CronJobs, by name, with their timeouts and retries."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.cronjobs import CronJobPatch, CronJobRunRequest, ScheduleUnpause
    from zerotouch.names import queue_for
    from zerotouch.schedules import JobOutcome

# Same retries and Job wait as every scheduled job: one definition (workflows/scheduled_job/calls.py).
from workflows.scheduled_job.calls import RETRY
from workflows.scheduled_job.calls import wait_for_job as wait_for_job  # re-exported for this workflow

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.CREATE_CRONJOB_JOB, names.WAIT_FOR_JOB, names.SUSPEND_CRONJOB, names.UNPAUSE_SCHEDULE})


async def create_job(request: CronJobRunRequest, cluster: str) -> JobOutcome:
    outcome: JobOutcome = await workflow.execute_activity(
        names.CREATE_CRONJOB_JOB, request,
        task_queue=queue_for(names.queue_of(names.CREATE_CRONJOB_JOB), cluster), result_type=JobOutcome,
        start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=timedelta(seconds=10), retry_policy=RETRY,
    )
    return outcome


async def suspend_cronjob(patch: CronJobPatch, cluster: str) -> str:
    detail: str = await workflow.execute_activity(
        names.SUSPEND_CRONJOB, patch, task_queue=queue_for(names.queue_of(names.SUSPEND_CRONJOB), cluster),
        result_type=str, start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=timedelta(seconds=10),
        retry_policy=RETRY,
    )
    return detail


async def unpause_schedule(request: ScheduleUnpause, cluster: str) -> None:
    await workflow.execute_activity(
        names.UNPAUSE_SCHEDULE, request, task_queue=queue_for(names.queue_of(names.UNPAUSE_SCHEDULE), cluster),
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
    )
