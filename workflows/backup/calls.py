"""The activity calls of the backup operation, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.alerts import AlertEvent
    from zerotouch.backup_models import (
        BackupCatalog,
        BackupEvidence,
        BackupRequest,
        BackupSummary,
        ListRequest,
        RetentionRequest,
        RetentionResult,
        VerificationReport,
        VerificationRequest,
    )
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.models import AlertForward
    from zerotouch.names import queue_for

from workflows.scheduled_job.calls import load_policy as load_policy  # re-exported for these workflows

# A backup or a restore is long and heavy: few attempts, spaced out. A dead worker is noticed by
# the heartbeat (the activities beat from a helper thread), not after the whole start-to-close.
HEAVY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=2), maximum_attempts=3,
                          non_retryable_error_types=list(NON_RETRYABLE))
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30), maximum_attempts=6,
                    non_retryable_error_types=list(NON_RETRYABLE))
# Short enough that a dead worker or a cancellation is noticed within seconds (the SDK sends at most
# one heartbeat per 80% of it); the activities beat from a helper thread, so it costs nothing.
HEARTBEAT = timedelta(seconds=10)
BACKUP_DEADLINE = timedelta(hours=6)
MIN_RESTORE_DEADLINE = timedelta(hours=1)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({names.LOAD_POLICY, names.TAKE_BACKUP, names.VERIFY_BACKUP, names.BACKUP_CATALOG,
                    names.APPLY_RETENTION, names.APPEND_BACKUP_EVIDENCE, names.FORWARD_ALERTS})


def _queue(name: str, cluster: str) -> str:
    return queue_for(names.queue_of(name), cluster)


async def take_backup(request: BackupRequest, cluster: str) -> BackupSummary:
    summary: BackupSummary = await workflow.execute_activity(
        names.TAKE_BACKUP, request, task_queue=_queue(names.TAKE_BACKUP, cluster), result_type=BackupSummary,
        start_to_close_timeout=BACKUP_DEADLINE, heartbeat_timeout=HEARTBEAT, retry_policy=HEAVY_RETRY,
    )
    return summary


async def verify_backup(request: VerificationRequest, cluster: str) -> VerificationReport:
    # A restore slower than three times the RTO objective has failed its objective anyway.
    deadline = max(MIN_RESTORE_DEADLINE, request.target.objectives.rto * 3)
    report: VerificationReport = await workflow.execute_activity(
        names.VERIFY_BACKUP, request, task_queue=_queue(names.VERIFY_BACKUP, cluster),
        result_type=VerificationReport, start_to_close_timeout=deadline, heartbeat_timeout=HEARTBEAT,
        retry_policy=HEAVY_RETRY,
        # A cancelled verification ends only once its throwaway cluster is stopped and removed.
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )
    return report


async def backup_catalog(request: ListRequest, cluster: str) -> BackupCatalog:
    catalog: BackupCatalog = await workflow.execute_activity(
        names.BACKUP_CATALOG, request, task_queue=_queue(names.BACKUP_CATALOG, cluster), result_type=BackupCatalog,
        start_to_close_timeout=timedelta(minutes=2), retry_policy=RETRY,
    )
    return catalog


async def apply_retention(request: RetentionRequest, cluster: str) -> RetentionResult:
    result: RetentionResult = await workflow.execute_activity(
        names.APPLY_RETENTION, request, task_queue=_queue(names.APPLY_RETENTION, cluster),
        result_type=RetentionResult, start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=HEARTBEAT,
        retry_policy=RETRY,
    )
    return result


async def append_evidence(evidence: BackupEvidence, cluster: str) -> LedgerReceipt:
    receipt: LedgerReceipt = await workflow.execute_activity(
        names.APPEND_BACKUP_EVIDENCE, evidence, task_queue=_queue(names.APPEND_BACKUP_EVIDENCE, cluster),
        result_type=LedgerReceipt, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
    )
    return receipt


async def tell_incident(incident_id: str, event: AlertEvent, cluster: str) -> int:
    """Open (or join, or resolve the alert of) the incident a failure belongs to."""
    told: int = await workflow.execute_activity(
        names.FORWARD_ALERTS, AlertForward(incident_id=incident_id, cluster=cluster, events=[event]),
        task_queue=_queue(names.FORWARD_ALERTS, cluster), result_type=int,
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
    )
    return told
