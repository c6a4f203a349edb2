"""The activity calls of a retention run, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.gdpr_retention import ExpireBatch, ExpiredRows, RetentionRecord
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.names import queue_for

from workflows.scheduled_job.calls import load_policy as load_policy  # read at the start of each run
from workflows.secret_rotation.calls import report_outcome as report_outcome
from workflows.secret_rotation.calls import request_grant as request_grant

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30), maximum_attempts=8,
                    non_retryable_error_types=list(NON_RETRYABLE))
# One batch is at most 100,000 rows (the data map's bound); a count reads as many keys.
BATCH_DEADLINE = timedelta(minutes=10)
HEARTBEAT = timedelta(seconds=30)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.LOAD_POLICY, names.REQUEST_GRANT, names.EXPIRE_ROWS, names.COUNT_EXPIRED_ROWS,
                    names.APPEND_RETENTION_RECORD})


async def _batch(name: str, batch: ExpireBatch, cluster: str) -> ExpiredRows:
    result: ExpiredRows = await workflow.execute_activity(
        name, batch, task_queue=queue_for(names.queue_of(name), cluster), result_type=ExpiredRows,
        start_to_close_timeout=BATCH_DEADLINE, heartbeat_timeout=HEARTBEAT, retry_policy=RETRY)
    return result


async def expire(batch: ExpireBatch, cluster: str) -> ExpiredRows:
    return await _batch(names.EXPIRE_ROWS, batch, cluster)


async def count(batch: ExpireBatch, cluster: str) -> ExpiredRows:
    return await _batch(names.COUNT_EXPIRED_ROWS, batch, cluster)


async def append_record(record: RetentionRecord, cluster: str) -> LedgerReceipt:
    result: LedgerReceipt = await workflow.execute_activity(
        names.APPEND_RETENTION_RECORD, record,
        task_queue=queue_for(names.queue_of(names.APPEND_RETENTION_RECORD), cluster), result_type=LedgerReceipt,
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
    return result
