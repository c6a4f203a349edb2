"""The activity calls of a node recovery, by name, with their timeouts and retry rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.activity_errors import NON_RETRYABLE
    from zerotouch.governor_models import SIGNAL_REPORT_OUTCOME, GovernorSettings, OutcomeReport, governor_id
    from zerotouch.governor_policy import NodeLeaseCall
    from zerotouch.ledger_models import LedgerReceipt
    from zerotouch.names import queue_for
    from zerotouch.node_lease_models import (
        SIGNAL_RELEASE_NODE_LEASE,
        SIGNAL_RENEW_NODE_LEASE,
        NodeLeaseDecision,
        NodeLeaseRenewal,
        NodeLeaseRequest,
    )
    from zerotouch.node_recovery_models import (
        CordonRequest,
        DrainRequest,
        DrainResult,
        NodeChange,
        NodeReadiness,
        NodeReadyWait,
        NodeRecoveryRecord,
        NodeTarget,
        NodeView,
        ProviderAck,
        ProviderCall,
        WorkloadsHealth,
        WorkloadWait,
    )

from workflows.backup.calls import tell_incident as tell_incident  # the same signal-with-start path
from workflows.scheduled_job.calls import load_policy as load_policy  # re-exported for this workflow
from workflows.secret_rotation.calls import request_grant as request_grant  # one Governor, one grant path

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30), maximum_attempts=10,
                    non_retryable_error_types=list(NON_RETRYABLE))
# A killed worker is noticed after this: the retry re-reads the node and carries on where it is.
HEARTBEAT = timedelta(seconds=10)
STEP = timedelta(minutes=2)

# tests/activities/test_registration.py checks the workers register each on the queue it is sent to.
CALLED = frozenset({
    names.LOAD_POLICY, names.FORWARD_ALERTS, names.REQUEST_GRANT, names.REQUEST_NODE_LEASE, names.READ_NODE,
    names.CORDON_NODE, names.DRAIN_NODE, names.WAIT_FOR_WORKLOADS, names.RESTART_NODE, names.WAIT_FOR_NODE_READY,
    names.APPEND_NODE_RECOVERY_RECORD,
})

T = TypeVar("T")


async def _run(name: str, arg: Any, cluster: str, result_type: type[T], *, deadline: timedelta = STEP,
               heartbeat: timedelta | None = HEARTBEAT) -> T:
    result: T = await workflow.execute_activity(
        name, arg, task_queue=queue_for(names.queue_of(name), cluster), result_type=result_type,
        start_to_close_timeout=deadline, heartbeat_timeout=heartbeat, retry_policy=RETRY)
    return result


async def read_node(node: str, cluster: str) -> NodeView:
    return await _run(names.READ_NODE, NodeTarget(node=node), cluster, NodeView)


async def cordon(request: CordonRequest, cluster: str) -> NodeChange:
    return await _run(names.CORDON_NODE, request, cluster, NodeChange)


async def drain(request: DrainRequest, cluster: str, budget: timedelta) -> DrainResult:
    return await _run(names.DRAIN_NODE, request, cluster, DrainResult, deadline=budget + STEP)


async def wait_for_workloads(wait: WorkloadWait, cluster: str, budget: timedelta) -> WorkloadsHealth:
    return await _run(names.WAIT_FOR_WORKLOADS, wait, cluster, WorkloadsHealth, deadline=budget + STEP)


async def restart_node(call: ProviderCall, cluster: str) -> ProviderAck:
    return await _run(names.RESTART_NODE, call, cluster, ProviderAck)


async def wait_for_ready(wait: NodeReadyWait, cluster: str, budget: timedelta) -> NodeReadiness:
    return await _run(names.WAIT_FOR_NODE_READY, wait, cluster, NodeReadiness, deadline=budget + STEP)


async def request_lease(request: NodeLeaseRequest, settings: GovernorSettings, cluster: str) -> NodeLeaseDecision:
    return await _run(names.REQUEST_NODE_LEASE, NodeLeaseCall(cluster=cluster, settings=settings, request=request),
                      cluster, NodeLeaseDecision, deadline=timedelta(seconds=60), heartbeat=None)


async def renew_lease(renewal: NodeLeaseRenewal, cluster: str) -> None:
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_RENEW_NODE_LEASE, renewal)


async def release_lease(renewal: NodeLeaseRenewal, cluster: str) -> None:
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_RELEASE_NODE_LEASE, renewal)


async def report_outcome(report: OutcomeReport, cluster: str) -> None:
    """Free the Governor's slot (blast radius) and feed its trust and breakers."""
    await workflow.get_external_workflow_handle(governor_id(cluster)).signal(SIGNAL_REPORT_OUTCOME, report)


async def append_record(record: NodeRecoveryRecord, cluster: str) -> LedgerReceipt:
    return await _run(names.APPEND_NODE_RECOVERY_RECORD, record, cluster, LedgerReceipt,
                      deadline=timedelta(seconds=30), heartbeat=None)
