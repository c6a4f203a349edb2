"""Reconcile Temporal Schedules with the policy's declarations, and read them back.

`plan` compares each declaration with the schedule the server holds (described, so no stale
list results) field by field; `apply` creates, updates and deletes until they match. Only
schedules zerotouch manages are touched: their memo says so (`zerotouch.schedules.MEMO_KEY`) and
names the cluster scope, so schedules made by hand, or by another cluster's zerotouch, stay.

The paused state is operational: a declaration with ``paused: true`` is created and kept paused,
but `apply` never unpauses a schedule someone (or pause-on-failure) paused; `unpause` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
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

from zerotouch.backups import BACKUP_INPUTS
from zerotouch.cronjobs import CronJobRunInput
from zerotouch.gdpr_retention import DATA_RETENTION_WORKFLOW, DataRetentionArgs, DataRetentionInput
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.rotations import SCHEDULED_ROTATION_WORKFLOW, RotationArgs, ScheduledRotationInput
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
from zerotouch.watchdog import WATCHDOG_WORKFLOW, WatchdogArgs, WatchdogInput

OVERLAP: dict[str, ScheduleOverlapPolicy] = {
    "SKIP": ScheduleOverlapPolicy.SKIP,
    "BUFFER_ONE": ScheduleOverlapPolicy.BUFFER_ONE,
    "BUFFER_ALL": ScheduleOverlapPolicy.BUFFER_ALL,
    "CANCEL_OTHER": ScheduleOverlapPolicy.CANCEL_OTHER,
    "TERMINATE_OTHER": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "ALLOW_ALL": ScheduleOverlapPolicy.ALLOW_ALL,
}
OVERLAP_NAME = {policy: name for name, policy in OVERLAP.items()}
CALENDAR_FIELDS = ("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year")




# --- declaration → Schedule ---------------------------------------------------------------


def workflow_input(declaration: ScheduleDeclaration, cluster: str = "") -> BaseModel:
    if declaration.workflow in BACKUP_INPUTS:  # backups, verification, retention (zerotouch/backups.py)
        return BACKUP_INPUTS[declaration.workflow].model_validate(
            {"schedule": declaration.name, "cluster": cluster, "arguments": declaration.arguments})
    if declaration.workflow == SCHEDULED_ROTATION_WORKFLOW:  # a secret rotation (zerotouch/rotations.py)
        return ScheduledRotationInput(schedule=declaration.name, cluster=cluster,
                                      arguments=RotationArgs.model_validate(declaration.arguments))
    if declaration.workflow == DATA_RETENTION_WORKFLOW:  # the data map's retention (zerotouch/gdpr_retention.py)
        return DataRetentionInput(schedule=declaration.name, cluster=cluster,
                                  arguments=DataRetentionArgs.model_validate(declaration.arguments))
    if declaration.workflow == WATCHDOG_WORKFLOW:  # one watchdog cycle (zerotouch/watchdog.py)
        return WatchdogInput(schedule=declaration.name, cluster=cluster,
                             arguments=WatchdogArgs.model_validate(declaration.arguments))
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


def ranges_text(ranges: Sequence[ScheduleRange]) -> list[str]:
    out = []
    for item in ranges:
        end = max(item.end, item.start)
        step = item.step or 1
        out.append(str(item.start) if end == item.start else f"{item.start}-{end}/{step}")
    return out


def seconds_of(value: timedelta | None) -> float:
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
        "execution_timeout": seconds_of(action.execution_timeout),
        "workflow_attempts": retry.maximum_attempts if retry else 0,
        "calendars": [{name: ranges_text(getattr(calendar, name)) for name in CALENDAR_FIELDS}
                      for calendar in spec.calendars],
        "cron_expressions": list(spec.cron_expressions),
        "intervals": [[seconds_of(i.every), seconds_of(i.offset)] for i in spec.intervals],
        "time_zone": spec.time_zone_name or "UTC",
        "jitter": seconds_of(spec.jitter),
        "overlap": OVERLAP_NAME.get(policy.overlap, str(policy.overlap)),
        "catchup_window": seconds_of(policy.catchup_window),
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


def is_managed(memo: Mapping[str, Any], cluster: str) -> bool:
    mark = memo.get(MEMO_KEY)
    return isinstance(mark, dict) and bool(mark.get("managed")) and mark.get("cluster", "") == cluster


async def describe(client: Client, sid: str) -> ScheduleDescription | None:
    """The schedule as the server holds it now, or None when there is none with that ID."""
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
        if is_managed(memo, cluster):
            found[entry.id] = str(memo[MEMO_KEY].get("name", entry.id))
    return found


async def plan(client: Client, declarations: Sequence[ScheduleDeclaration], cluster: str = "") -> list[Change]:
    """What `apply` would change: creates, updates (with the differing fields) and deletes."""
    changes: list[Change] = []
    declared_ids = set()
    for declaration in declarations:
        sid = schedule_id(declaration.name, cluster)
        declared_ids.add(sid)
        description = await describe(client, sid)
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
        description = await describe(client, sid)
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
