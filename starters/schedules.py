"""Reconcile Temporal Schedules with the policy's declarations, and read them back.

`plan` compares each declaration with the schedule the server holds (described, so no stale
list results) field by field; `apply` creates, updates and deletes until they match. Only
schedules zerotouch manages are touched: their memo says so (`zerotouch.schedules.MEMO_KEY`) and
names the cluster scope, so schedules made by hand, or by another cluster's zerotouch, stay.

The paused state is operational: a declaration with ``paused: true`` is created and kept paused,
but `apply` never unpauses a schedule someone (or pause-on-failure) paused; `unpause` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy
from temporalio.service import RPCError, RPCStatusCode

from zerotouch.cronjobs import CronJobRunInput
from zerotouch.durations import format_duration
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.schedules import (
    CRONJOB_RUN_WORKFLOW,
    MEMO_KEY,
    CronJobRunArgs,
    ScheduleDeclaration,
    ScheduledJobInput,
    cron_calendar,
    schedule_id,
    scheduled_workflow_id,
)

OVERLAP: dict[str, ScheduleOverlapPolicy] = {
    "SKIP": ScheduleOverlapPolicy.SKIP,
    "BUFFER_ONE": ScheduleOverlapPolicy.BUFFER_ONE,
    "BUFFER_ALL": ScheduleOverlapPolicy.BUFFER_ALL,
    "CANCEL_OTHER": ScheduleOverlapPolicy.CANCEL_OTHER,
    "TERMINATE_OTHER": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "ALLOW_ALL": ScheduleOverlapPolicy.ALLOW_ALL,
}
_OVERLAP_NAME = {policy: name for name, policy in OVERLAP.items()}
_CALENDAR_FIELDS = ("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year")


class ScheduleNotManaged(LookupError):
    """The schedule does not exist, or zerotouch does not manage it."""


# --- declaration → Schedule ---------------------------------------------------------------


def workflow_input(declaration: ScheduleDeclaration, cluster: str = "") -> ScheduledJobInput | CronJobRunInput:
    if declaration.workflow == CRONJOB_RUN_WORKFLOW:  # an imported CronJob (starters/cronjob_import.py)
        return CronJobRunInput(schedule=declaration.name, cluster=cluster,
                               arguments=CronJobRunArgs.model_validate(declaration.arguments))
    return ScheduledJobInput(schedule=declaration.name, cluster=cluster, arguments=declaration.job_arguments())


def build_schedule(declaration: ScheduleDeclaration, cluster: str = "") -> Schedule:
    """The Temporal Schedule a declaration stands for."""
    calendars = [
        ScheduleCalendarSpec(**{name: [ScheduleRange(start, end, step) for start, end, step in ranges]
                                for name, ranges in cron_calendar(expression).items()}, comment=expression)
        for expression in declaration.cron
    ]
    intervals = ([ScheduleIntervalSpec(every=declaration.interval, offset=declaration.offset)]
                 if declaration.interval is not None else [])
    return Schedule(
        action=ScheduleActionStartWorkflow(
            declaration.workflow,
            workflow_input(declaration, cluster),
            id=scheduled_workflow_id(declaration.name, cluster),
            task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
            execution_timeout=declaration.execution_timeout,
            retry_policy=RetryPolicy(maximum_attempts=declaration.workflow_attempts,
                                     initial_interval=timedelta(seconds=1)),
        ),
        spec=ScheduleSpec(calendars=calendars, intervals=intervals, time_zone_name=declaration.time_zone,
                          jitter=declaration.jitter or None),
        policy=SchedulePolicy(overlap=OVERLAP[declaration.overlap], catchup_window=declaration.catchup_window,
                              pause_on_failure=declaration.pause_on_failure),
        state=ScheduleState(paused=declaration.paused, note=declaration.notes or None),
    )


def _ranges(ranges: Sequence[ScheduleRange]) -> list[str]:
    out = []
    for item in ranges:
        end = max(item.end, item.start)
        step = item.step or 1
        out.append(str(item.start) if end == item.start else f"{item.start}-{end}/{step}")
    return out


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value else 0.0


def view(schedule: Schedule, args: Sequence[Any]) -> dict[str, Any]:
    """The fields `diff` compares, normalized so that what was sent equals what is described back."""
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    spec, policy = schedule.spec, schedule.policy
    retry = action.retry_policy
    return {
        "workflow": action.workflow,
        "arguments": [a.model_dump(mode="json") if hasattr(a, "model_dump") else a for a in args],
        "workflow_id": action.id,
        "task_queue": action.task_queue,
        "execution_timeout": _seconds(action.execution_timeout),
        "workflow_attempts": retry.maximum_attempts if retry else 0,
        "calendars": [{name: _ranges(getattr(calendar, name)) for name in _CALENDAR_FIELDS}
                      for calendar in spec.calendars],
        "cron_expressions": list(spec.cron_expressions),
        "intervals": [[_seconds(i.every), _seconds(i.offset)] for i in spec.intervals],
        "time_zone": spec.time_zone_name or "UTC",
        "jitter": _seconds(spec.jitter),
        "overlap": _OVERLAP_NAME.get(policy.overlap, str(policy.overlap)),
        "catchup_window": _seconds(policy.catchup_window),
        "pause_on_failure": policy.pause_on_failure,
    }


# --- plan and apply -----------------------------------------------------------------------


@dataclass
class Change:
    """One difference between the declarations and the server."""

    # "kept": not declared, but an imported CronJob's schedule: deleting it would leave the suspended
    # CronJob with nothing running its job, so only `import-cronjobs --undo` removes it.
    kind: Literal["create", "update", "delete", "kept"]
    name: str
    schedule_id: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (server, declared)
    pause: bool = False  # declared paused, running on the server

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "schedule_id": self.schedule_id, "pause": self.pause,
                "fields": {k: {"server": s, "declared": d} for k, (s, d) in self.fields.items()}}


def _is_managed(memo: Mapping[str, Any], cluster: str) -> bool:
    mark = memo.get(MEMO_KEY)
    return isinstance(mark, dict) and bool(mark.get("managed")) and mark.get("cluster", "") == cluster


async def _describe(client: Client, sid: str) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(sid).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def described_view(client: Client, description: ScheduleDescription) -> dict[str, Any]:
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    args = await client.data_converter.decode(list(action.args)) if action.args else []
    return view(description.schedule, args)


async def managed_ids(client: Client, cluster: str = "") -> dict[str, str]:
    """``{schedule ID: declaration name}`` of every schedule this cluster scope's zerotouch manages.

    From the list (eventually consistent: a schedule created a moment ago may be missing).
    """
    found = {}
    async for entry in await client.list_schedules():
        memo = await entry.memo()
        if _is_managed(memo, cluster):
            found[entry.id] = str(memo[MEMO_KEY].get("name", entry.id))
    return found


async def plan(client: Client, declarations: Sequence[ScheduleDeclaration], cluster: str = "") -> list[Change]:
    """What `apply` would change: creates, updates (with the differing fields) and deletes."""
    changes: list[Change] = []
    declared_ids = set()
    for declaration in declarations:
        sid = schedule_id(declaration.name, cluster)
        declared_ids.add(sid)
        description = await _describe(client, sid)
        if description is None:
            changes.append(Change("create", declaration.name, sid))
            continue
        wanted = view(build_schedule(declaration, cluster), [workflow_input(declaration, cluster)])
        current = await described_view(client, description)
        differing = {k: (current.get(k), v) for k, v in wanted.items() if current.get(k) != v}
        pause = declaration.paused and not description.schedule.state.paused
        if differing or pause:
            changes.append(Change("update", declaration.name, sid, differing, pause))
    for sid, name in sorted((await managed_ids(client, cluster)).items()):
        if sid in declared_ids:
            continue
        description = await _describe(client, sid)
        if description is None:
            continue
        action = description.schedule.action
        imported = isinstance(action, ScheduleActionStartWorkflow) and action.workflow == CRONJOB_RUN_WORKFLOW
        changes.append(Change("kept" if imported else "delete", name, sid))
    return changes


async def apply(client: Client, declarations: Sequence[ScheduleDeclaration], cluster: str = "") -> list[Change]:
    """Make the server match the declarations; returns what was changed (empty: nothing to do)."""
    by_name = {d.name: d for d in declarations}
    changes = await plan(client, declarations, cluster)
    for change in changes:
        if change.kind == "kept":
            continue
        if change.kind == "delete":
            await client.get_schedule_handle(change.schedule_id).delete()
            continue
        declaration = by_name[change.name]
        schedule = build_schedule(declaration, cluster)
        if change.kind == "create":
            try:
                await client.create_schedule(
                    change.schedule_id, schedule,
                    memo={MEMO_KEY: {"managed": True, "cluster": cluster, "name": declaration.name}},
                )
            except ScheduleAlreadyRunningError:  # created since we looked: bring it in line instead
                change.kind = "update"
            else:
                continue

        def updated(current: ScheduleUpdateInput, schedule: Schedule = schedule,
                    declared_paused: bool = declaration.paused) -> ScheduleUpdate:
            # The state is operational (see the module doc): keep it, pausing only if declared paused.
            state = current.description.schedule.state
            schedule.state = ScheduleState(paused=state.paused or declared_paused, note=state.note)
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(change.schedule_id).update(updated)
    return changes


async def apply_and_summarize(client: Client, declarations: Sequence[ScheduleDeclaration],
                              cluster: str = "") -> str:
    """Apply, and say in one line what there is and what changed (for `zerotouch up`'s banner)."""
    changes = await apply(client, declarations, cluster)
    names = ", ".join(d.name for d in declarations) or "none declared"
    if not changes:
        return f"{names} (unchanged)"
    words = {"create": "created", "update": "updated", "delete": "deleted", "kept": "kept (imported from CronJobs)"}
    counts = {word: sum(1 for c in changes if c.kind == kind) for kind, word in words.items()}
    done = ", ".join(f"{n} {word}" for word, n in counts.items() if n)
    return f"{names} (applied: {done})"


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
        overlap=_OVERLAP_NAME.get(schedule.policy.overlap, str(schedule.policy.overlap)),
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
        description = await _describe(client, sid)
        if description is not None and _is_managed(await description.memo(), cluster):
            return description
    raise ScheduleNotManaged(f"no schedule {name!r} managed by zerotouch (try `zerotouch schedules list`)")


async def rows(client: Client, cluster: str = "", names: Iterable[str] = ()) -> list[ScheduleRow]:
    """Every managed schedule (plus ``names``, which may be too new for the list) with its run info."""
    found = await managed_ids(client, cluster)
    for name in names:
        found.setdefault(schedule_id(name, cluster), name)
    out = []
    for sid, name in sorted(found.items(), key=lambda item: item[1]):
        description = await _describe(client, sid)
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


# --- rendering --------------------------------------------------------------------------


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    delta = value - now
    rel = f"in {format_duration(delta)}" if delta >= timedelta(0) else f"{format_duration(-delta)} ago"
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z ({rel})"


def render_rows(found: Sequence[ScheduleRow], now: datetime | None = None) -> str:
    if not found:
        return "no schedules (declare them in the policy's `schedules:` and run `zerotouch schedules apply`)"
    now = now or datetime.now(UTC)
    header = ("NAME", "STATE", "SPEC", "NEXT RUN", "LAST RUN", "RUNS", "SKIPPED", "MISSED")
    table = [header] + [
        (r.name, "paused" if r.paused else "active", r.spec, _when(r.next_run, now), _when(r.last_run, now),
         str(r.runs), str(r.skipped_overlap), str(r.missed_catchup))
        for r in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def render_row(row: ScheduleRow, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    lines = [
        f"schedule   {row.name}   ({row.schedule_id})",
        f"workflow   {row.workflow}",
        f"spec       {row.spec}",
        f"state      {'paused' if row.paused else 'active'}" + (f" — {row.note}" if row.note else ""),
        f"overlap    {row.overlap}",
        f"next run   {_when(row.next_run, now)}",
        f"last run   {_when(row.last_run, now)}",
        f"runs       {row.runs} (skipped by overlap {row.skipped_overlap}, "
        f"missed outside the catch-up window {row.missed_catchup})",
    ]
    if row.running:
        lines.append(f"running    {', '.join(row.running)}")
    for recent in row.recent:
        lines.append(f"  ran {recent['scheduled_at']} → {recent['workflow_id']}")
    return "\n".join(lines)


def render_changes(changes: Sequence[Change]) -> str:
    if not changes:
        return "no changes: the server matches the declarations"
    lines = []
    for change in changes:
        sign = {"create": "+", "update": "~", "delete": "-", "kept": "="}[change.kind]
        lines.append(f"{sign} {change.kind} {change.name} ({change.schedule_id})")
        if change.kind == "kept":
            lines.append("    imported from a CronJob and not in the policy: add its declaration, or give the "
                         "CronJob back with `zerotouch schedules import-cronjobs --undo`")
        for name, (server, declared) in change.fields.items():
            lines.append(f"    {name}: {server!r} → {declared!r}")
        if change.pause:
            lines.append("    paused: False → True")
    return "\n".join(lines)


# --- metrics ------------------------------------------------------------------------------


class ScheduleMetrics(Collector):
    """``zerotouch_schedule_*`` gauges of every managed schedule, from the last `refresh`.

    Temporal's own schedule metrics are per namespace; these are per schedule. Register it on a
    process's registry (`Telemetry.registry`) and run `watch`.
    """

    def __init__(self) -> None:
        self._rows: list[ScheduleRow] = []
        self.refreshed_at: datetime | None = None

    async def refresh(self, client: Client, cluster: str = "", names: Iterable[str] = ()) -> None:
        self._rows = await rows(client, cluster, names)
        self.refreshed_at = datetime.now(UTC)

    async def watch(self, client: Client, stop: asyncio.Event, cluster: str = "", names: Iterable[str] = (),
                    every: timedelta = timedelta(seconds=15)) -> None:
        """Refresh until ``stop`` is set; a failed look keeps the previous values (and is retried).

        ``names``: declared schedules to describe even before the (eventually consistent) list shows them.
        """
        names = list(names)
        while not stop.is_set():
            with contextlib.suppress(RPCError, RuntimeError):
                await self.refresh(client, cluster, names)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every.total_seconds())

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["schedule", "workflow"]

        def family(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"zerotouch_schedule_{name}", doc, labels=labels)

        last = family("last_run_timestamp_seconds", "When the schedule's last run started (Unix seconds).")
        scheduled = family("last_scheduled_timestamp_seconds", "The scheduled time of the last run (Unix seconds).")
        upcoming = family("next_run_timestamp_seconds", "When the schedule runs next (Unix seconds).")
        runs = family("runs", "Runs the schedule started (Temporal's num_actions).")
        skipped = family("skipped_overlap",
                         "Runs skipped by the overlap policy (Temporal's num_actions_skipped_overlap).")
        missed = family("missed_catchup_window",
                        "Runs missed outside the catch-up window (num_actions_missed_catchup_window).")
        paused = family("paused", "1 when the schedule is paused.")
        for row in self._rows:
            values = [row.name, row.workflow]
            if row.last_run is not None:
                last.add_metric(values, row.last_run.timestamp())
            if row.last_scheduled is not None:
                scheduled.add_metric(values, row.last_scheduled.timestamp())
            if row.next_run is not None:
                upcoming.add_metric(values, row.next_run.timestamp())
            runs.add_metric(values, row.runs)
            skipped.add_metric(values, row.skipped_overlap)
            missed.add_metric(values, row.missed_catchup)
            paused.add_metric(values, 1.0 if row.paused else 0.0)
        return [last, scheduled, upcoming, runs, skipped, missed, paused]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
