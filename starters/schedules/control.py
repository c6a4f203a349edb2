"""Reading managed schedules back, and steering them: list, show, pause, unpause, trigger, backfill."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleSpec,
)

from starters.schedules.reconcile import (
    OVERLAP,
    OVERLAP_NAME,
    describe,
    is_managed,
    managed_ids,
)
from zerotouch.durations import format_duration
from zerotouch.schedules import (
    MEMO_KEY,
    schedule_id,
)


class ScheduleNotManaged(LookupError):
    """The schedule does not exist, or zerotouch does not manage it."""


# --- reading schedules --------------------------------------------------------------------


@dataclass
class ScheduleRow:
    """One managed schedule as `list` and `show` print it and the metrics export it."""

    name: str
    schedule_id: str
    workflow: str
    spec: str
    paused: bool
    note: str
    overlap: str
    next_run: datetime | None
    last_run: datetime | None
    last_scheduled: datetime | None
    runs: int
    skipped_overlap: int
    missed_catchup: int
    running: list[str]
    recent: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def describe_spec(spec: ScheduleSpec) -> str:
    parts = [c.comment or "calendar" for c in spec.calendars] + list(spec.cron_expressions)
    parts += [f"every {format_duration(i.every)}" + (f" +{format_duration(i.offset)}" if i.offset else "")
              for i in spec.intervals]
    text = ", ".join(parts) or "(none)"
    if spec.time_zone_name and spec.time_zone_name != "UTC":
        text += f" ({spec.time_zone_name})"
    return text


def row_of(name: str, description: ScheduleDescription) -> ScheduleRow:
    info, schedule = description.info, description.schedule
    action = schedule.action
    recent = sorted(info.recent_actions, key=lambda r: r.scheduled_at)
    last = recent[-1] if recent else None
    return ScheduleRow(
        name=name, schedule_id=description.id,
        workflow=action.workflow if isinstance(action, ScheduleActionStartWorkflow) else type(action).__name__,
        spec=describe_spec(schedule.spec), paused=schedule.state.paused, note=schedule.state.note or "",
        overlap=OVERLAP_NAME.get(schedule.policy.overlap, str(schedule.policy.overlap)),
        next_run=min(info.next_action_times) if info.next_action_times else None,
        last_run=last.started_at if last else None, last_scheduled=last.scheduled_at if last else None,
        runs=info.num_actions, skipped_overlap=info.num_actions_skipped_overlap,
        missed_catchup=info.num_actions_missed_catchup_window,
        running=[getattr(r, "workflow_id", "") for r in info.running_actions],
        recent=[{"scheduled_at": r.scheduled_at.isoformat(), "started_at": r.started_at.isoformat(),
                 "workflow_id": getattr(r.action, "workflow_id", "")} for r in recent],
    )


async def managed_handle(client: Client, name: str, cluster: str = "") -> ScheduleDescription:
    """The description of one managed schedule, by declaration name (or schedule ID)."""
    for sid in (schedule_id(name, cluster), name):
        description = await describe(client, sid)
        if description is not None and is_managed(await description.memo(), cluster):
            return description
    raise ScheduleNotManaged(f"no schedule {name!r} managed by zerotouch (try `zerotouch schedules list`)")


async def rows(client: Client, cluster: str = "", names: Iterable[str] = ()) -> list[ScheduleRow]:
    """Every managed schedule (plus ``names``, which may be too new for the list) with its run info."""
    found = await managed_ids(client, cluster)
    for name in names:
        found.setdefault(schedule_id(name, cluster), name)
    out = []
    for sid, name in sorted(found.items(), key=lambda item: item[1]):
        description = await describe(client, sid)
        if description is not None:
            out.append(row_of(name, description))
    return out


async def show(client: Client, name: str, cluster: str = "") -> ScheduleRow:
    description = await managed_handle(client, name, cluster)
    memo = (await description.memo()).get(MEMO_KEY) or {}
    return row_of(str(memo.get("name", name)), description)


async def pause(client: Client, name: str, note: str, cluster: str = "") -> None:
    description = await managed_handle(client, name, cluster)
    await client.get_schedule_handle(description.id).pause(note=note)


async def unpause(client: Client, name: str, note: str, cluster: str = "") -> None:
    description = await managed_handle(client, name, cluster)
    await client.get_schedule_handle(description.id).unpause(note=note)


async def trigger(client: Client, name: str, overlap: str | None = None, cluster: str = "") -> None:
    description = await managed_handle(client, name, cluster)
    await client.get_schedule_handle(description.id).trigger(overlap=OVERLAP[overlap] if overlap else None)


async def backfill(client: Client, name: str, start: datetime, end: datetime, overlap: str | None = None,
                   cluster: str = "") -> None:
    """Run every action the spec has in [start, end] as if that time were now."""
    description = await managed_handle(client, name, cluster)
    await client.get_schedule_handle(description.id).backfill(
        ScheduleBackfill(start_at=start, end_at=end, overlap=OVERLAP[overlap] if overlap else None))
