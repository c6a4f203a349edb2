"""Reading what actually happened out of workflow histories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.history.v1 import ActivityTaskStartedEventAttributes
from temporalio.client import WorkflowHandle


@dataclass(frozen=True)
class FiredTimer:
    started_at: datetime
    timeout: timedelta
    fired_at: datetime

    @property
    def due_at(self) -> datetime:
        return self.started_at + self.timeout


async def fired_timers(handle: WorkflowHandle[Any, Any]) -> list[FiredTimer]:
    """Every timer of the workflow that fired, with when it started, was due and fired (server clock)."""
    started: dict[int, tuple[datetime, timedelta]] = {}
    fired = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            attributes = event.timer_started_event_attributes
            started[event.event_id] = (event.event_time.ToDatetime(), attributes.start_to_fire_timeout.ToTimedelta())
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            at, timeout = started[event.timer_fired_event_attributes.started_event_id]
            fired.append(FiredTimer(at, timeout, event.event_time.ToDatetime()))
    return fired


async def _starts_of(
    handle: WorkflowHandle[Any, Any], activity: str
) -> AsyncIterator[ActivityTaskStartedEventAttributes]:
    """Every attempt of `activity` that a worker started, in history order."""
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if scheduled.get(attributes.scheduled_event_id) == activity:
                yield attributes


async def activity_attempts(handle: WorkflowHandle[Any, Any], activity: str) -> list[int]:
    """The attempt number each completed (or failed for good) run of `activity` ended on."""
    return [started.attempt async for started in _starts_of(handle, activity)]


async def retry_causes(handle: WorkflowHandle[Any, Any], activity: str) -> list[str]:
    """Why each retry of `activity` happened: the previous attempt's timeout type, or its failure message."""
    causes = []
    async for started in _starts_of(handle, activity):
        if started.attempt > 1:
            failure = started.last_failure
            if failure.HasField("timeout_failure_info"):
                causes.append(TimeoutType.Name(failure.timeout_failure_info.timeout_type))
            else:
                causes.append(failure.message)
    return causes
