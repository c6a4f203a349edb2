"""The activity calls of a scheduled job, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.models import PolicyRequest
    from zerotouch.names import queue_for
    from zerotouch.policy import Policy
    from zerotouch.policy_share import shared_policy
    from zerotouch.schedules import JobOutcome, JobWait, ScheduledJobRequest

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=list(NON_RETRYABLE),  # includes JobTimeout
)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.LOAD_POLICY, names.CREATE_SCHEDULED_JOB, names.WAIT_FOR_JOB})


async def load_policy(cluster: str) -> Policy:
    policy: Policy = await workflow.execute_activity(
        names.LOAD_POLICY, PolicyRequest(), task_queue=queue_for(names.queue_of(names.LOAD_POLICY), cluster),
        result_type=Policy, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
    )
    return shared_policy(policy)  # one object for every run that read the same policy


async def create_job(request: ScheduledJobRequest, cluster: str) -> JobOutcome:
    outcome: JobOutcome = await workflow.execute_activity(
        names.CREATE_SCHEDULED_JOB, request,
        task_queue=queue_for(names.queue_of(names.CREATE_SCHEDULED_JOB), cluster), result_type=JobOutcome,
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
