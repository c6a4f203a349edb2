"""The activity calls of imported CronJobs, by name, with their timeouts and retries."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.cronjobs import CronJobPatch, CronJobRunRequest, ScheduleUnpause
    from zerotouch.names import queue_for
    from zerotouch.schedules import JobOutcome, JobWait

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=list(NON_RETRYABLE),  # includes JobTimeout
)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.CREATE_CRONJOB_JOB, names.WAIT_FOR_JOB, names.SUSPEND_CRONJOB, names.UNPAUSE_SCHEDULE})


async def create_job(request: CronJobRunRequest, cluster: str) -> JobOutcome:
    outcome: JobOutcome = await workflow.execute_activity(
        names.CREATE_CRONJOB_JOB, request,
        task_queue=queue_for(names.queue_of(names.CREATE_CRONJOB_JOB), cluster), result_type=JobOutcome,
        start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=timedelta(seconds=10), retry_policy=RETRY,
    )
    return outcome


async def wait_for_job(wait: JobWait, cluster: str) -> JobOutcome:
    outcome: JobOutcome = await workflow.execute_activity(
        names.WAIT_FOR_JOB, wait, task_queue=queue_for(names.queue_of(names.WAIT_FOR_JOB), cluster),
        result_type=JobOutcome, start_to_close_timeout=timedelta(seconds=wait.timeout_seconds + 60),
        heartbeat_timeout=timedelta(seconds=max(10.0, wait.poll_seconds * 5)), retry_policy=RETRY,
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
