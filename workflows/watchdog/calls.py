"""The activity calls of one watchdog cycle, by name, with their timeouts and retry rules.

A cycle is meant to be cheap and bounded: every call has a short deadline and few attempts, so
an unreachable Prometheus costs a cycle seconds and is reported, not waited out.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.models import Notification, NotificationResult
    from zerotouch.names import queue_for
    from zerotouch.watchdog import (
        CheckReading,
        CheckRequest,
        ConnectionReading,
        IncidentDelivery,
        RelayProbe,
        RelayReading,
    )

from workflows.scheduled_job.calls import load_policy as load_policy  # read at the start of each cycle

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=5), maximum_attempts=3,
                    non_retryable_error_types=list(NON_RETRYABLE))
READ_DEADLINE = timedelta(seconds=30)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.LOAD_POLICY, names.RUN_WATCHDOG_CHECK, names.GET_CONNECTION_USAGE,
                    names.READ_RELAY_LAST_DELIVERY, names.OPEN_WATCHDOG_INCIDENTS, names.SEND_NOTIFICATION})


def _queue(name: str, cluster: str) -> str:
    return queue_for(names.queue_of(name), cluster)


async def run_check(request: CheckRequest, cluster: str) -> CheckReading:
    reading: CheckReading = await workflow.execute_activity(
        names.RUN_WATCHDOG_CHECK, request, task_queue=_queue(names.RUN_WATCHDOG_CHECK, cluster),
        result_type=CheckReading, start_to_close_timeout=READ_DEADLINE, retry_policy=RETRY)
    return reading


async def connection_usage(reference: str, cluster: str) -> ConnectionReading:
    """The data worker's existing get_connection_usage: the DSN never leaves the worker that holds it."""
    usage: ConnectionReading = await workflow.execute_activity(
        names.GET_CONNECTION_USAGE, {"reference": reference}, task_queue=_queue(names.GET_CONNECTION_USAGE, cluster),
        result_type=ConnectionReading, start_to_close_timeout=READ_DEADLINE, retry_policy=RETRY)
    return usage


async def read_relay(probe: RelayProbe, cluster: str) -> RelayReading:
    reading: RelayReading = await workflow.execute_activity(
        names.READ_RELAY_LAST_DELIVERY, probe, task_queue=_queue(names.READ_RELAY_LAST_DELIVERY, cluster),
        result_type=RelayReading, start_to_close_timeout=READ_DEADLINE, retry_policy=RETRY)
    return reading


async def open_incidents(delivery: IncidentDelivery, cluster: str) -> list[str]:
    told: list[str] = await workflow.execute_activity(
        names.OPEN_WATCHDOG_INCIDENTS, delivery, task_queue=_queue(names.OPEN_WATCHDOG_INCIDENTS, cluster),
        result_type=list[str], start_to_close_timeout=timedelta(minutes=2), heartbeat_timeout=timedelta(seconds=30),
        retry_policy=RETRY)
    return told


async def page(note: Notification, cluster: str) -> NotificationResult:
    result: NotificationResult = await workflow.execute_activity(
        names.SEND_NOTIFICATION, note, task_queue=_queue(names.SEND_NOTIFICATION, cluster),
        result_type=NotificationResult, start_to_close_timeout=READ_DEADLINE, retry_policy=RETRY)
    return result
