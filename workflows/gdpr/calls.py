"""The activity calls of a data-subject request, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.gdpr_models import (
        DsrReceipt,
        ExportManifest,
        StoreErased,
        StoreExported,
        StoreManifest,
        StoreRequery,
        StoreStep,
        SuppressStep,
    )
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.names import queue_for

from workflows.backup.calls import tell_incident as tell_incident  # the same signal-with-start path
from workflows.scheduled_job.calls import load_policy as load_policy  # pinned once, at intake
from workflows.secret_rotation.calls import report_outcome as report_outcome
from workflows.secret_rotation.calls import request_grant as request_grant

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30), maximum_attempts=8,
                    non_retryable_error_types=list(NON_RETRYABLE))
# A store that fails keeps being retried, with backoff, for as long as the request runs: the request
# stays `partial` (its status says which store and why) and never completes while a store is pending.
# Only what retrying cannot fix (a data map naming a missing table) stops it.
STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=10), maximum_attempts=0,
                          non_retryable_error_types=list(NON_RETRYABLE))
STORE_DEADLINE = timedelta(hours=2)  # one attempt on one store: a million rows fit in it
HEARTBEAT = timedelta(seconds=30)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({
    names.LOAD_POLICY, names.FORWARD_ALERTS, names.REQUEST_GRANT, names.RESOLVE_SUBJECT, names.EXPORT_SUBJECT,
    names.ERASE_SUBJECT, names.REQUERY_SUBJECT, names.WRITE_EXPORT_MANIFEST, names.SUPPRESS_SUBJECT,
    names.APPEND_DSR_RECEIPT,
})

T = TypeVar("T")


async def _store(name: str, arg: Any, cluster: str, result_type: type[T]) -> T:
    result: T = await workflow.execute_activity(
        name, arg, task_queue=queue_for(names.queue_of(name), cluster), result_type=result_type,
        start_to_close_timeout=STORE_DEADLINE, heartbeat_timeout=HEARTBEAT, retry_policy=STORE_RETRY)
    return result


async def resolve(step: StoreStep, cluster: str) -> StoreManifest:
    return await _store(names.RESOLVE_SUBJECT, step, cluster, StoreManifest)


async def export(step: StoreStep, cluster: str) -> StoreExported:
    return await _store(names.EXPORT_SUBJECT, step, cluster, StoreExported)


async def write_export_manifest(manifest: ExportManifest, cluster: str) -> str:
    result: str = await workflow.execute_activity(
        names.WRITE_EXPORT_MANIFEST, manifest,
        task_queue=queue_for(names.queue_of(names.WRITE_EXPORT_MANIFEST), cluster), result_type=str,
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
    return result


async def erase(step: StoreStep, cluster: str) -> StoreErased:
    return await _store(names.ERASE_SUBJECT, step, cluster, StoreErased)


async def requery(step: StoreStep, cluster: str) -> StoreRequery:
    return await _store(names.REQUERY_SUBJECT, step, cluster, StoreRequery)


async def suppress(step: SuppressStep, cluster: str) -> None:
    await workflow.execute_activity(
        names.SUPPRESS_SUBJECT, step, task_queue=queue_for(names.queue_of(names.SUPPRESS_SUBJECT), cluster),
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)


async def append_receipt(receipt: DsrReceipt, cluster: str) -> LedgerReceipt:
    result: LedgerReceipt = await workflow.execute_activity(
        names.APPEND_DSR_RECEIPT, receipt, task_queue=queue_for(names.queue_of(names.APPEND_DSR_RECEIPT), cluster),
        result_type=LedgerReceipt, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
    return result
