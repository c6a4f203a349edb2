"""The activity calls of a database failover, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.db_failover_models import DatabaseFailoverRecord, FailoverStep, FailoverStepResult
    from zerotouch.governor_models import (
        SIGNAL_REPORT_OUTCOME,
        GovernorSettings,
        GrantDecision,
        GrantRequest,
        OutcomeReport,
        governor_id,
    )
    from zerotouch.governor_policy import GrantCall
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.names import queue_for

from workflows.backup.calls import tell_incident as tell_incident  # the same signal-with-start path
from workflows.scheduled_job.calls import load_policy as load_policy  # re-exported for this workflow

# A step that keeps failing for a retryable reason (a connection refused for a moment) is retried a few
# times; then the failover stops where it is and escalates. Nothing here is retried forever.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=10), maximum_attempts=4,
                    non_retryable_error_types=list(NON_RETRYABLE))
HEARTBEAT = timedelta(seconds=20)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({
    names.LOAD_POLICY, names.FORWARD_ALERTS, names.REQUEST_GRANT, names.CONFIRM_PRIMARY_DOWN,
    names.MEASURE_REPLICA_LAG, names.FENCE_OLD_PRIMARY, names.PROMOTE_REPLICA, names.REPOINT_DATABASE_CONSUMERS,
    names.VERIFY_NEW_PRIMARY, names.REJOIN_OLD_PRIMARY, names.APPEND_DB_FAILOVER_RECORD,
})


async def step(name: str, arg: FailoverStep, cluster: str, deadline: timedelta) -> FailoverStepResult:
    """One idempotent step; its own deadline comes from the policy (probes, stop and promote timeouts)."""
    result: FailoverStepResult = await workflow.execute_activity(
        name, arg, task_queue=queue_for(names.queue_of(name), cluster), result_type=FailoverStepResult,
        start_to_close_timeout=deadline + timedelta(seconds=60), heartbeat_timeout=HEARTBEAT, retry_policy=RETRY)
    return result


async def request_grant(request: GrantRequest, settings: GovernorSettings, cluster: str) -> GrantDecision:
    decision: GrantDecision = await workflow.execute_activity(
        names.REQUEST_GRANT, GrantCall(cluster=cluster, settings=settings, request=request),
        task_queue=queue_for(names.queue_of(names.REQUEST_GRANT), cluster), result_type=GrantDecision,
        start_to_close_timeout=timedelta(minutes=2), retry_policy=RETRY)
    return decision


async def report_outcome(report: OutcomeReport, cluster: str) -> None:
    """Free the Governor's slot and feed its trust and breakers."""
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_REPORT_OUTCOME, report)


async def append_record(record: DatabaseFailoverRecord, cluster: str) -> LedgerReceipt:
    receipt: LedgerReceipt = await workflow.execute_activity(
        names.APPEND_DB_FAILOVER_RECORD, record,
        task_queue=queue_for(names.queue_of(names.APPEND_DB_FAILOVER_RECORD), cluster), result_type=LedgerReceipt,
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
    return receipt
