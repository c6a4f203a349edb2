"""The activity calls an incident makes, by name, with their timeouts and retry rules.

Activities are called by name so this package never imports a client library.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import (
        SIGNAL_REPORT_OUTCOME,
        GovernorSettings,
        GrantDecision,
        GrantRequest,
        OutcomeReport,
        governor_id,
    )
    from zerotouch.governor_policy import GrantCall
    from zerotouch.ledger_models import LedgerEntryInput, LedgerReceipt
    from zerotouch.models import (
        ActionRequest,
        ActionResult,
        ClusterUsage,
        ClusterUsageRequest,
        Notification,
        NotificationResult,
        PolicyRequest,
        PromQLCheck,
        PromQLResult,
        RolloutCheck,
        RolloutStatus,
    )
    from zerotouch.names import DATA_QUEUE, KUBERNETES_QUEUE, OBSERVE_QUEUE, queue_for
    from zerotouch.policy import Policy

# Errors that retrying cannot fix: the activity says so, the incident escalates.
NON_RETRYABLE = [
    "InvalidTarget",
    "NotFound",
    "BoundExceeded",
    "NoPreviousRevision",
    "Forbidden",
    "InvalidPolicy",
    "NotificationRejected",
    "InvalidParams",
    "Invalid",
    "InvalidQuery",
    "MissingSecret",
    "UnknownChannel",
]

ACTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=NON_RETRYABLE,
)

_QUEUE_OF_ACTION = {"terminate_idle_connections": DATA_QUEUE}


async def load_policy(cluster: str) -> Policy:
    return await workflow.execute_activity(
        "load_policy",
        PolicyRequest(),
        task_queue=queue_for(OBSERVE_QUEUE, cluster),
        result_type=Policy,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=ACTION_RETRY,
    )


async def apply_action(request: ActionRequest, cluster: str) -> ActionResult:
    return await workflow.execute_activity(
        request.action,
        request,
        task_queue=queue_for(_QUEUE_OF_ACTION.get(request.action, KUBERNETES_QUEUE), cluster),
        result_type=ActionResult,
        start_to_close_timeout=timedelta(seconds=60),
        retry_policy=ACTION_RETRY,
    )


async def wait_for_rollout(check: RolloutCheck, cluster: str) -> RolloutStatus:
    return await workflow.execute_activity(
        "wait_for_rollout",
        check,
        task_queue=queue_for(KUBERNETES_QUEUE, cluster),
        result_type=RolloutStatus,
        start_to_close_timeout=timedelta(seconds=check.timeout_seconds + 60),
        heartbeat_timeout=timedelta(seconds=max(30.0, check.poll_seconds * 5)),
        retry_policy=ACTION_RETRY,
    )


async def wait_for_promql(check: PromQLCheck, cluster: str) -> PromQLResult:
    return await workflow.execute_activity(
        "wait_for_promql",
        check,
        task_queue=queue_for(OBSERVE_QUEUE, cluster),
        result_type=PromQLResult,
        start_to_close_timeout=timedelta(seconds=check.timeout_seconds + 60),
        heartbeat_timeout=timedelta(seconds=max(30.0, check.poll_seconds * 5)),
        retry_policy=ACTION_RETRY,
    )


async def send_notification(notification: Notification, cluster: str) -> NotificationResult:
    return await workflow.execute_activity(
        "send_notification",
        notification,
        task_queue=queue_for(OBSERVE_QUEUE, cluster),
        result_type=NotificationResult,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=ACTION_RETRY,
    )


async def get_rollout_status(check: RolloutCheck, cluster: str) -> RolloutStatus:
    return await workflow.execute_activity(
        "get_rollout_status",
        check,
        task_queue=queue_for(KUBERNETES_QUEUE, cluster),
        result_type=RolloutStatus,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=ACTION_RETRY,
    )


async def get_cluster_usage(cluster: str) -> ClusterUsage:
    return await workflow.execute_activity(
        "get_cluster_usage",
        ClusterUsageRequest(),
        task_queue=queue_for(KUBERNETES_QUEUE, cluster),
        result_type=ClusterUsage,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=ACTION_RETRY,
    )


async def request_grant(request: GrantRequest, settings: GovernorSettings, cluster: str) -> GrantDecision:
    """Ask the cluster's Governor (through an activity: workflows cannot send updates)."""
    return await workflow.execute_activity(
        "request_grant",
        GrantCall(cluster=cluster, settings=settings, request=request),
        task_queue=queue_for(OBSERVE_QUEUE, cluster),
        result_type=GrantDecision,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=ACTION_RETRY,
    )


async def report_outcome(report: OutcomeReport, cluster: str) -> None:
    """Tell the Governor how a granted action ended: it frees the slot and feeds trust and breakers."""
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_REPORT_OUTCOME, report)


async def append_to_ledger(entry: LedgerEntryInput, cluster: str) -> LedgerReceipt:
    return await workflow.execute_activity(
        "append_incident_record",
        entry,
        task_queue=queue_for(OBSERVE_QUEUE, cluster),
        result_type=LedgerReceipt,
        start_to_close_timeout=timedelta(seconds=60),
        retry_policy=ACTION_RETRY,
    )
