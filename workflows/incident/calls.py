"""The activity calls an incident makes, by name, with their timeouts and retry rules.

Activities are called by name so this package never imports a client library.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.alertmanager_source import SourceAnswer, SourceCheck
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
        AlertForward,
        ClusterUsage,
        ClusterUsageRequest,
        Notification,
        NotificationResult,
        PolicyRequest,
        PromQLCheck,
        PromQLResult,
        RolloutCheck,
        RolloutStatus,
        SymptomCheck,
        SymptomReport,
    )
    from zerotouch.names import queue_for
    from zerotouch.policy import Policy
    from zerotouch.policy_share import shared_policy
    from zerotouch.schedules import JobOutcome, JobWait
    from zerotouch.workloads import WorkloadQuery, WorkloadRef

ACTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    # Errors retrying cannot fix (activities raise them non-retryable too): the incident escalates.
    non_retryable_error_types=list(NON_RETRYABLE),
)

# The activities this module calls: tests/activities/test_registration.py checks that the workers
# register each on the queue it is sent to. The actions are the policy's (zerotouch.action_params).
CALLED = frozenset({
    names.LOAD_POLICY, names.WAIT_FOR_ROLLOUT, names.WAIT_FOR_PROMQL, names.SEND_NOTIFICATION,
    names.GET_ROLLOUT_STATUS, names.GET_CLUSTER_USAGE, names.REQUEST_GRANT, names.APPEND_INCIDENT_RECORD,
    names.RESTART_DEPLOYMENT, names.SCALE_DEPLOYMENT, names.ROLLBACK_DEPLOYMENT, names.RAISE_MEMORY_LIMIT,
    names.EVICT_POD, names.RUN_JOB, names.TERMINATE_IDLE_CONNECTIONS, names.RESOLVE_WORKLOAD,
    names.FORWARD_ALERTS, names.FIND_FIRING_ALERTS, names.GET_WORKLOAD_SYMPTOMS,
    names.QUERY_PROMQL, names.WAIT_FOR_JOB,
})

T = TypeVar("T")


async def _run(
    name: str, argument: Any, *, cluster: str, result_type: type[T],
    timeout: timedelta = timedelta(seconds=30), heartbeat: timedelta | None = None,
) -> T:
    """One activity call on the cluster's queue for it, with the incident's retry rules."""
    result: T = await workflow.execute_activity(
        name,
        argument,
        task_queue=queue_for(names.queue_of(name), cluster),
        result_type=result_type,
        start_to_close_timeout=timeout,
        heartbeat_timeout=heartbeat,
        retry_policy=ACTION_RETRY,
    )
    return result


# Incidents that began before the policy was read inside the workflow task replay as they ran.
LOCAL_POLICY_PATCH = "load-policy-as-local-activity"
LOCAL_POLICY_TIMEOUT = timedelta(seconds=10)


async def load_policy(cluster: str) -> Policy:
    """The workers' policy, read on the workflow's own worker as a local activity.

    An incident's first step used to be a trip through the observe queue: one activity dispatch
    and one more workflow task before triage (BENCHMARKS.md, scenario 2: three workflow tasks and
    three activities to the floor's one and one). The workflow worker reads the same file (its
    Deployment mounts the policy), cached until the file changes (`activities.policy`).
    """
    if workflow.patched(LOCAL_POLICY_PATCH):
        policy: Policy = await workflow.execute_local_activity(
            names.LOAD_POLICY, PolicyRequest(), result_type=Policy,
            start_to_close_timeout=LOCAL_POLICY_TIMEOUT, retry_policy=ACTION_RETRY,
        )
        return shared_policy(policy)
    return shared_policy(await _run(names.LOAD_POLICY, PolicyRequest(), cluster=cluster, result_type=Policy))


async def forward_alerts(forward: AlertForward, cluster: str) -> int:
    return await _run(names.FORWARD_ALERTS, forward, cluster=cluster, result_type=int)


async def resolve_workload(query: WorkloadQuery, cluster: str) -> WorkloadRef:
    return await _run(names.RESOLVE_WORKLOAD, query, cluster=cluster, result_type=WorkloadRef)


# An action's worker heartbeats while it waits on the API (`activities.keepalive`), so if the
# worker dies mid-action the retry starts on another one after this, not after the whole
# start_to_close. The retry finds the idempotency key if the lost attempt had already acted.
ACTION_HEARTBEAT = timedelta(seconds=10)
ACTION_TIMEOUT = timedelta(seconds=60)


async def apply_action(request: ActionRequest, cluster: str) -> ActionResult:
    return await _run(request.action, request, cluster=cluster, result_type=ActionResult,
                      timeout=ACTION_TIMEOUT, heartbeat=ACTION_HEARTBEAT)


def _polling(timeout_seconds: float, poll_seconds: float) -> dict[str, timedelta]:
    return {"timeout": timedelta(seconds=timeout_seconds + 60),
            "heartbeat": timedelta(seconds=max(30.0, poll_seconds * 5))}


async def wait_for_rollout(check: RolloutCheck, cluster: str) -> RolloutStatus:
    return await _run(names.WAIT_FOR_ROLLOUT, check, cluster=cluster, result_type=RolloutStatus,
                      **_polling(check.timeout_seconds, check.poll_seconds))


async def wait_for_job(wait: JobWait, cluster: str) -> JobOutcome:
    return await _run(names.WAIT_FOR_JOB, wait, cluster=cluster, result_type=JobOutcome,
                      **_polling(wait.timeout_seconds, wait.poll_seconds))


async def wait_for_promql(check: PromQLCheck, cluster: str) -> PromQLResult:
    return await _run(names.WAIT_FOR_PROMQL, check, cluster=cluster, result_type=PromQLResult,
                      **_polling(check.timeout_seconds, check.poll_seconds))


async def send_notification(notification: Notification, cluster: str) -> NotificationResult:
    return await _run(names.SEND_NOTIFICATION, notification, cluster=cluster, result_type=NotificationResult)


async def get_workload_symptoms(check: SymptomCheck, cluster: str) -> SymptomReport:
    return await _run(names.GET_WORKLOAD_SYMPTOMS, check, cluster=cluster, result_type=SymptomReport)


async def query_promql(check: PromQLCheck, cluster: str) -> PromQLResult:
    return await _run(names.QUERY_PROMQL, check, cluster=cluster, result_type=PromQLResult)


async def get_rollout_status(check: RolloutCheck, cluster: str) -> RolloutStatus:
    return await _run(names.GET_ROLLOUT_STATUS, check, cluster=cluster, result_type=RolloutStatus)


async def get_cluster_usage(cluster: str) -> ClusterUsage:
    return await _run(names.GET_CLUSTER_USAGE, ClusterUsageRequest(), cluster=cluster, result_type=ClusterUsage)


async def request_grant(request: GrantRequest, settings: GovernorSettings, cluster: str) -> GrantDecision:
    """Ask the cluster's Governor (through an activity: workflows cannot send updates).

    Not a local activity, though it would save a dispatch: a local activity holds its incident's
    workflow task, and the Governor's own workflow tasks need the same worker's slots, so a storm
    of incidents waiting on grants starved the Governor that answers them (the storm never drained).
    """
    call = GrantCall(cluster=cluster, settings=settings, request=request)
    return await _run(names.REQUEST_GRANT, call, cluster=cluster, result_type=GrantDecision)


async def report_outcome(report: OutcomeReport, cluster: str) -> None:
    """Tell the Governor how a granted action ended: it frees the slot and feeds trust and breakers."""
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_REPORT_OUTCOME, report)


async def append_to_ledger(entry: LedgerEntryInput, cluster: str) -> LedgerReceipt:
    return await _run(names.APPEND_INCIDENT_RECORD, entry, cluster=cluster, result_type=LedgerReceipt,
                      timeout=timedelta(seconds=60))


# A few quick tries per question; between questions the incident waits on its own, longer
# backoff (`workflows.incident.source`) and says in its timeline that it could not confirm.
SOURCE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=4), maximum_attempts=3)


async def find_firing_alerts(check: SourceCheck, cluster: str) -> SourceAnswer:
    answer: SourceAnswer = await workflow.execute_activity(
        names.FIND_FIRING_ALERTS, check, task_queue=queue_for(names.queue_of(names.FIND_FIRING_ALERTS), cluster),
        result_type=SourceAnswer, start_to_close_timeout=timedelta(seconds=30), retry_policy=SOURCE_RETRY,
    )
    return answer
