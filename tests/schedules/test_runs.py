"""Scheduled runs on the dev server: overlap, backfill, pause-on-failure, one Job per scheduled time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, WorkflowExecutionStatus

from starters import schedules
from tests.schedules.conftest import Stack, declaration
from tests.schedules.test_replay import replay_and_record
from tests.support.waiting import eventually
from zerotouch.schedules import schedule_id, scheduled_workflow_id


async def _runs(client: Client, workflow_id_prefix: str) -> list[tuple[str, WorkflowExecutionStatus | None]]:
    query = f"WorkflowId STARTS_WITH '{workflow_id_prefix}'"
    return [(w.id, w.status) async for w in client.list_workflows(query)]


async def test_overlap_skip_counts_skipped_runs(slow_stack: Stack, made: list[str]) -> None:
    client, scope = slow_stack.client, slow_stack.cluster
    made.append("every-second")
    # Every second, but the Job never finishes (the sandbox is frozen): each later run is skipped.
    await schedules.apply(client, [declaration("every-second", interval="1s", overlap="SKIP", paused=False)], scope)
    handle = client.get_schedule_handle(schedule_id("every-second", scope))

    async def skipped() -> int:
        return (await handle.describe()).info.num_actions_skipped_overlap

    assert await eventually(skipped, timeout=15, interval=0.2, what="a run skipped by overlap") >= 1
    info = (await handle.describe()).info
    assert info.num_actions == 1
    assert len(info.running_actions) == 1
    await handle.pause(note="test over")
    row = await schedules.show(client, "every-second", scope)
    assert row.skipped_overlap >= 1 and row.runs == 1
    # The watcher's gauges say the same.
    metrics = schedules.ScheduleMetrics()
    await metrics.refresh(client, scope, names=["every-second"])  # named: the list may not show it yet
    families = {f.name: f for f in metrics.collect()}
    assert set(families) >= {"zerotouch_schedule_skipped_overlap", "zerotouch_schedule_missed_catchup_window",
                             "zerotouch_schedule_next_run_timestamp_seconds",
                             "zerotouch_schedule_last_run_timestamp_seconds"}
    skipped_samples = families["zerotouch_schedule_skipped_overlap"].samples
    assert [(s.labels["schedule"], s.value >= 1) for s in skipped_samples] == [("every-second", True)]


async def test_backfill_of_one_hour_every_ten_minutes_runs_six_times(stack: Stack, made: list[str]) -> None:
    client, scope = stack.client, stack.cluster
    made.append("ten-minutes")
    await schedules.apply(client, [declaration("ten-minutes", interval="10m", overlap="BUFFER_ALL")], scope)
    start = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    # One hour: [03:00, 04:00), the end just before the seventh boundary.
    await schedules.backfill(client, "ten-minutes", start, start + timedelta(hours=1) - timedelta(seconds=1),
                             cluster=scope)
    expected = [start + timedelta(minutes=10 * i) for i in range(6)]
    prefix = scheduled_workflow_id("ten-minutes", scope)

    async def completed() -> list[tuple[str, WorkflowExecutionStatus | None]] | None:
        runs = await _runs(client, prefix)
        done = [r for r in runs if r[1] == WorkflowExecutionStatus.COMPLETED]
        return runs if len(done) >= 6 else None

    runs = await eventually(completed, timeout=40, interval=0.3, what="six backfilled runs completed")
    assert sorted(r[0] for r in runs) == [f"{prefix}-{t.strftime('%Y-%m-%dT%H:%M:%SZ')}" for t in expected]
    jobs = stack.jobs()
    assert sorted(j["metadata"]["name"] for j in jobs) == [f"ten-minutes-{t:%Y%m%d%H%M%S}" for t in expected]
    assert {j["metadata"]["annotations"]["zerotouch.io/scheduled-time"] for j in jobs} == \
        {t.isoformat() for t in expected}
    await replay_and_record(client.get_workflow_handle(runs[0][0]), "scheduled-job-backfilled")


async def test_the_same_scheduled_time_twice_makes_one_job(stack: Stack, made: list[str]) -> None:
    """A catch-up (here: the same backfill again) of a time that already ran does not run its Job twice."""
    client, scope = stack.client, stack.cluster
    made.append("once")
    await schedules.apply(client, [declaration("once", interval="10m", overlap="ALLOW_ALL")], scope)
    at = datetime(2026, 1, 5, 3, 10, tzinfo=UTC)
    run_id = f"{scheduled_workflow_id('once', scope)}-{at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    results: list[Any] = []
    for _ in range(2):
        await schedules.backfill(client, "once", at, at, cluster=scope)

        async def finished() -> object:
            history_runs = [w async for w in client.list_workflows(f"WorkflowId = '{run_id}'")]
            done = [w for w in history_runs if w.status == WorkflowExecutionStatus.COMPLETED]
            return done if len(done) > len(results) else None

        await eventually(finished, timeout=20, interval=0.2, what="the backfilled run completed")
        results.append(await client.get_workflow_handle(run_id).result())
    assert [r["created"] if isinstance(r, dict) else r.created for r in results] == [True, False]
    assert [j["metadata"]["name"] for j in stack.jobs()] == [f"once-{at:%Y%m%d%H%M%S}"]


async def test_pause_on_failure_pauses_once_retries_are_exhausted(stack: Stack, made: list[str]) -> None:
    client = stack.client
    made += ["failing"]
    # A namespace the sandbox does not have: every attempt fails (NotFound), two attempts, then the run fails.
    failing = declaration("failing", interval="10m", pause_on_failure=True, workflow_attempts=2, paused=False,
                          arguments={"template": "log-cleanup", "namespace": "nowhere", "poll": "100ms"})
    await schedules.apply(client, [failing], stack.cluster)
    await schedules.trigger(client, "failing", cluster=stack.cluster)
    handle = client.get_schedule_handle(schedule_id("failing", stack.cluster))

    async def paused() -> bool:
        description = await handle.describe()
        return description.schedule.state.paused and not description.info.running_actions

    await eventually(paused, timeout=30, interval=0.2, what="paused after the run failed")
    run = (await handle.describe()).info.recent_actions[-1].action
    assert isinstance(run, ScheduleActionExecutionStartWorkflow)
    described = await client.get_workflow_handle(run.workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.FAILED
    history = await client.get_workflow_handle(run.workflow_id).fetch_history()
    attempts = [e.workflow_execution_started_event_attributes.attempt for e in history.events
                if e.HasField("workflow_execution_started_event_attributes")]
    assert attempts == [2]  # the final run of the chain is the second attempt: retries were exhausted first


async def test_a_cancelled_run_does_not_pause_the_schedule(slow_stack: Stack, made: list[str]) -> None:
    client = slow_stack.client
    made.append("cancelled")
    await schedules.apply(client, [declaration("cancelled", interval="10m", pause_on_failure=True, paused=False)],
                          slow_stack.cluster)
    await schedules.trigger(client, "cancelled", cluster=slow_stack.cluster)
    handle = client.get_schedule_handle(schedule_id("cancelled", slow_stack.cluster))

    async def running() -> str | None:
        actions = (await handle.describe()).info.running_actions
        return actions[0].workflow_id if actions else None  # type: ignore[attr-defined]

    workflow_id = await eventually(running, what="the triggered run running")
    await eventually(lambda: _has_job(slow_stack), what="its Job created")
    await client.get_workflow_handle(workflow_id).cancel()

    async def settled() -> bool:
        description = await handle.describe()
        return not description.info.running_actions and bool(description.info.recent_actions)

    await eventually(settled, timeout=20, interval=0.2, what="the scheduler saw the run close")
    assert (await client.get_workflow_handle(workflow_id).describe()).status == WorkflowExecutionStatus.CANCELED
    assert not (await handle.describe()).schedule.state.paused


async def _has_job(stack: Stack) -> bool:
    return bool(stack.jobs())
