"""The activity calls of a secret rotation, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
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
    from zerotouch.models import PromQLCheck, PromQLResult, RolloutCheck, RolloutStatus
    from zerotouch.names import queue_for
    from zerotouch.rotation_models import (
        ConsumerList,
        ConsumerRollout,
        CredentialUse,
        RolledOut,
        RotationRecord,
        RotationStep,
        RotationView,
        StageMark,
        StepResult,
    )
    from zerotouch.rotations import SecretRef

from workflows.backup.calls import tell_incident as tell_incident  # the same signal-with-start path
from workflows.scheduled_job.calls import load_policy as load_policy  # re-exported for this workflow

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30), maximum_attempts=8,
                    non_retryable_error_types=list(NON_RETRYABLE))
# A step that keeps failing for a retryable reason (the database is down) is not abandoned half-way:
# it keeps trying for this long, then the rotation rolls back what it did and opens an incident.
STEP_DEADLINE = timedelta(minutes=10)
# The rotation's own activities heartbeat while they run (`activities.keepalive`): a worker killed
# mid-step is noticed after this, and the retry repeats the step under the same token.
STEP_HEARTBEAT = timedelta(seconds=5)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({
    names.LOAD_POLICY, names.FORWARD_ALERTS, names.REQUEST_GRANT, names.READ_ROTATION_STATE,
    names.CREATE_PENDING_CREDENTIAL, names.FINISH_ROTATION, names.ROLLBACK_ROTATION, names.MARK_ROTATION,
    names.FIND_SECRET_CONSUMERS, names.ROLL_SECRET_CONSUMERS, names.WAIT_FOR_ROLLOUT, names.WAIT_FOR_PROMQL,
    names.SET_PENDING_CREDENTIAL, names.TEST_PENDING_CREDENTIAL, names.UNDO_PENDING_CREDENTIAL,
    names.RESTORE_CURRENT_CREDENTIAL, names.REVOKE_PREVIOUS_CREDENTIAL, names.COUNT_CREDENTIAL_SESSIONS,
    names.APPEND_ROTATION_RECORD,
})

T = TypeVar("T")


async def _run(name: str, arg: Any, cluster: str, result_type: type[T],
               deadline: timedelta = timedelta(minutes=2), heartbeat: timedelta | None = None) -> T:
    result: T = await workflow.execute_activity(
        name, arg, task_queue=queue_for(names.queue_of(name), cluster), result_type=result_type,
        start_to_close_timeout=deadline, schedule_to_close_timeout=STEP_DEADLINE + deadline,
        heartbeat_timeout=heartbeat, retry_policy=RETRY)
    return result


def _polling(seconds: float, poll: float) -> dict[str, timedelta]:
    return {"deadline": timedelta(seconds=seconds + 60), "heartbeat": timedelta(seconds=max(10.0, poll * 5))}


async def read_state(step: RotationStep, cluster: str) -> RotationView:
    return await _run(names.READ_ROTATION_STATE, step, cluster, RotationView, heartbeat=STEP_HEARTBEAT)


async def step(name: str, rotation_step: RotationStep, cluster: str) -> StepResult:
    """One of the idempotent steps that take a RotationStep and answer a StepResult."""
    return await _run(name, rotation_step, cluster, StepResult, heartbeat=STEP_HEARTBEAT)


async def mark(stage_mark: StageMark, cluster: str) -> StepResult:
    return await _run(names.MARK_ROTATION, stage_mark, cluster, StepResult, heartbeat=STEP_HEARTBEAT)


async def find_consumers(secret: SecretRef, cluster: str) -> ConsumerList:
    return await _run(names.FIND_SECRET_CONSUMERS, secret, cluster, ConsumerList, heartbeat=STEP_HEARTBEAT)


async def roll_consumers(rollout: ConsumerRollout, cluster: str) -> RolledOut:
    return await _run(names.ROLL_SECRET_CONSUMERS, rollout, cluster, RolledOut, heartbeat=STEP_HEARTBEAT)


async def wait_for_rollout(check: RolloutCheck, cluster: str) -> RolloutStatus:
    return await _run(names.WAIT_FOR_ROLLOUT, check, cluster, RolloutStatus,
                      **_polling(check.timeout_seconds, check.poll_seconds))


async def wait_for_promql(check: PromQLCheck, cluster: str) -> PromQLResult:
    return await _run(names.WAIT_FOR_PROMQL, check, cluster, PromQLResult,
                      **_polling(check.timeout_seconds, check.poll_seconds))


async def count_sessions(rotation_step: RotationStep, cluster: str) -> CredentialUse:
    return await _run(names.COUNT_CREDENTIAL_SESSIONS, rotation_step, cluster, CredentialUse, heartbeat=STEP_HEARTBEAT)


async def request_grant(request: GrantRequest, settings: GovernorSettings, cluster: str) -> GrantDecision:
    return await _run(names.REQUEST_GRANT, GrantCall(cluster=cluster, settings=settings, request=request), cluster,
                      GrantDecision)


async def report_outcome(report: OutcomeReport, cluster: str) -> None:
    """Free the Governor's slot (blast radius) and feed its trust and breakers."""
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_REPORT_OUTCOME, report)


async def append_record(record: RotationRecord, cluster: str) -> LedgerReceipt:
    return await _run(names.APPEND_ROTATION_RECORD, record, cluster, LedgerReceipt, deadline=timedelta(seconds=30))
