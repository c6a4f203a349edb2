"""The activity calls of a namespace restore, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.names import queue_for
    from zerotouch.namespace_restore_models import (
        NamespaceRestoreRecord,
        RestoreApplied,
        RestoreApply,
        RestoreCheck,
        RestorePlan,
        RestoreSource,
        RestoreVerified,
    )

from workflows.secret_rotation.calls import RETRY, STEP_DEADLINE
from workflows.secret_rotation.calls import load_policy as load_policy
from workflows.secret_rotation.calls import report_outcome as report_outcome
from workflows.secret_rotation.calls import request_grant as request_grant
from workflows.secret_rotation.calls import tell_incident as tell_incident

# The restore's own activities heartbeat while they run: a worker killed mid-apply is noticed after
# this, and the retry applies the same plan again (what already landed is recognised by its digest).
HEARTBEAT = timedelta(seconds=10)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({
    names.LOAD_POLICY, names.FORWARD_ALERTS, names.REQUEST_GRANT, names.PLAN_NAMESPACE_RESTORE,
    names.APPLY_NAMESPACE_RESTORE, names.VERIFY_NAMESPACE_RESTORE, names.APPEND_NAMESPACE_RESTORE_RECORD,
})

T = TypeVar("T")


async def _run(name: str, arg: Any, cluster: str, result_type: type[T], deadline: timedelta,
               heartbeat: timedelta | None = HEARTBEAT) -> T:
    result: T = await workflow.execute_activity(
        name, arg, task_queue=queue_for(names.queue_of(name), cluster), result_type=result_type,
        start_to_close_timeout=deadline, schedule_to_close_timeout=STEP_DEADLINE + deadline,
        heartbeat_timeout=heartbeat, retry_policy=RETRY)
    return result


async def plan(source: RestoreSource, cluster: str) -> RestorePlan:
    return await _run(names.PLAN_NAMESPACE_RESTORE, source, cluster, RestorePlan, timedelta(minutes=2))


async def apply(request: RestoreApply, cluster: str) -> RestoreApplied:
    return await _run(names.APPLY_NAMESPACE_RESTORE, request, cluster, RestoreApplied, timedelta(minutes=5))


async def verify(check: RestoreCheck, cluster: str) -> RestoreVerified:
    return await _run(names.VERIFY_NAMESPACE_RESTORE, check, cluster, RestoreVerified,
                      timedelta(seconds=check.timeout_seconds + 60))


async def append_record(record: NamespaceRestoreRecord, cluster: str) -> LedgerReceipt:
    return await _run(names.APPEND_NAMESPACE_RESTORE_RECORD, record, cluster, LedgerReceipt,
                      timedelta(seconds=30), heartbeat=None)
