"""The activity calls of a drill, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.drill_models import (
        DrillDelivered,
        DrillDelivery,
        DrillFault,
        DrillInjection,
        DrillObservation,
        DrillResult,
        DrillWatch,
    )
    from zerotouch.drills import POSTGRES_FAULT
    from zerotouch.governor_models import SIGNAL_RECORD_DRILL_OUTCOME, DrillOutcomeReport, governor_id
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.names import queue_for

from workflows.scheduled_job.calls import load_policy as load_policy  # re-exported for this workflow

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=10), maximum_attempts=6,
                    non_retryable_error_types=list(NON_RETRYABLE))
# Removing the fault must outlast a sandbox or worker restart: it retries for as long as it takes.
CLEANUP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                            maximum_interval=timedelta(seconds=30), non_retryable_error_types=list(NON_RETRYABLE))
STEP = timedelta(minutes=1)
RESTORE_DEADLINE = timedelta(minutes=3)
# The watch polls for minutes; a dead worker (or a cancelled drill) is noticed within this.
HEARTBEAT = timedelta(seconds=10)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.LOAD_POLICY, names.INJECT_DRILL_FAULT, names.REMOVE_DRILL_FAULT, names.DELIVER_DRILL_ALERT,
                    names.WATCH_DRILL, names.APPEND_DRILL_RECORD, names.STOP_DRILL_PRIMARY,
                    names.RESTORE_DRILL_PRIMARY})

T = TypeVar("T")


async def _run(name: str, arg: Any, cluster: str, result_type: type[T], *, deadline: timedelta = STEP,
               heartbeat: timedelta | None = None, retry: RetryPolicy = RETRY) -> T:
    result: T = await workflow.execute_activity(
        name, arg, task_queue=queue_for(names.queue_of(name), cluster), result_type=result_type,
        start_to_close_timeout=deadline, heartbeat_timeout=heartbeat, retry_policy=retry)
    return result


# A PostgreSQL primary is stopped and started by the data worker, on whose machine its data directory is.
async def inject_fault(fault: DrillFault) -> DrillInjection:
    name = names.STOP_DRILL_PRIMARY if fault.drill.fault == POSTGRES_FAULT else names.INJECT_DRILL_FAULT
    return await _run(name, fault, fault.cluster, DrillInjection)


async def remove_fault(fault: DrillFault) -> bool:
    name = names.RESTORE_DRILL_PRIMARY if fault.drill.fault == POSTGRES_FAULT else names.REMOVE_DRILL_FAULT
    # A restore may wait out a failover that is fencing or promoting: it gets the longer deadline.
    return await _run(name, fault, fault.cluster, bool, retry=CLEANUP_RETRY,
                      deadline=RESTORE_DEADLINE if fault.drill.fault == POSTGRES_FAULT else STEP)


async def deliver_alert(delivery: DrillDelivery) -> DrillDelivered:
    return await _run(names.DELIVER_DRILL_ALERT, delivery, delivery.cluster, DrillDelivered)


async def watch(request: DrillWatch, budget: timedelta) -> DrillObservation:
    return await _run(names.WATCH_DRILL, request, request.cluster, DrillObservation, deadline=budget + STEP,
                      heartbeat=HEARTBEAT)


async def append_record(result: DrillResult, cluster: str) -> LedgerReceipt:
    return await _run(names.APPEND_DRILL_RECORD, result, cluster, LedgerReceipt)


async def record_drill_outcome(report: DrillOutcomeReport, cluster: str) -> None:
    """Tell the Governor a drill failed on a runbook: its trust in that runbook drops."""
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_RECORD_DRILL_OUTCOME, report)
