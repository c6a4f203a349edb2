"""What Temporal says about scenario 9's rotations: the worker's pollers, each rotation's history, the Governor."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bench.scenarios.rotation_report import Wave
from zerotouch import activity_names as names
from zerotouch.governor_client import GovernorError, governor_status
from zerotouch.governor_models import SIGNAL_REPORT_OUTCOME
from zerotouch.names import DATA_QUEUE, KUBERNETES_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for


async def worker_ready(client: Client, timeout: float = 120.0) -> None:
    """Until the worker polls every queue a rotation uses: its start-up is not a rotation's time."""
    wanted = [(WORKFLOWS_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)] + [
        (queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for queue in (KUBERNETES_QUEUE, DATA_QUEUE, OBSERVE_QUEUE)]
    deadline = time.monotonic() + timeout
    while wanted:
        queue, kind = wanted[0]
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue_for(queue, "")), task_queue_type=kind))
        if answer.pollers:
            wanted.pop(0)
        elif time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not poll {queue} within {timeout:.0f} s; see worker.log")
        else:
            await asyncio.sleep(0.1)


def _at(event: Any) -> datetime:
    at: datetime = event.event_time.ToDatetime(tzinfo=UTC)
    return at


Span = tuple[datetime, datetime, datetime, datetime, int]


async def grant_span(handle: WorkflowHandle[Any, Any]) -> Span | None:
    """(started, granted, outcome reported, closed, refusals waited out) from the rotation's history:
    granted is when the granting request_grant completed, reported when the outcome signal left;
    None if it was never granted."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    asks: list[datetime] = []
    reported = None
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if scheduled.get(done.scheduled_event_id) == names.REQUEST_GRANT:
                asks.append(_at(event))
        elif kind == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            signal = event.signal_external_workflow_execution_initiated_event_attributes
            reported = _at(event) if signal.signal_name == SIGNAL_REPORT_OUTCOME else reported
    if not asks or reported is None:
        return None
    return _at(history.events[0]), asks[-1], reported, _at(history.events[-1]), len(asks) - 1


async def watch_governor(client: Client, wave: Wave, stop: asyncio.Event) -> None:
    """The Governor's own view while the wave runs: its in-flight count per namespace and its rate window."""
    while not stop.is_set():
        with contextlib.suppress(GovernorError, RPCError):  # a query lost under load is a missed sample, no more
            status = await governor_status(client, "")
            wave.samples += 1
            wave.governor_rate = max(wave.governor_rate, status.rate_used)
            for namespace, count in status.in_flight.items():
                wave.governor_in_flight[namespace] = max(wave.governor_in_flight.get(namespace, 0), count)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
