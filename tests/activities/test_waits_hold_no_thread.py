"""Rollout waits sleep on the event loop: many of them hold none of the worker's executor threads.

Issue #19: a sync wait held one of the worker's shared executor threads for its whole duration,
so a storm of verifications starved the actions queued behind them. Here a worker with only
two executor threads runs more waits than that at once, and a one-look sync activity still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.kubernetes import KubernetesActivities
from tests.support.waiting import eventually
from zerotouch import activity_names as names
from zerotouch.models import RolloutCheck, RolloutStatus

from .conftest import Env

EXECUTOR_THREADS = 2
WAITS = 8  # four times the executor: sync waits would leave the look queued behind them
# Healthy, but never for long enough: the waits poll until the test ends them.
ENDLESS = RolloutCheck(namespace="shop", deployment="web", hold_for_seconds=120, timeout_seconds=120,
                       poll_seconds=0.2)


@workflow.defn(sandboxed=False)
class WaitsBesideALook:
    """Starts the waits at once; on the `look` signal runs one sync look and returns its verdict."""

    def __init__(self) -> None:
        self._look = False

    @workflow.signal
    def look(self) -> None:
        self._look = True

    @workflow.run
    async def run(self, waits: int) -> RolloutStatus:
        for _ in range(waits):
            workflow.start_activity(names.WAIT_FOR_ROLLOUT, ENDLESS, result_type=RolloutStatus,
                                    start_to_close_timeout=timedelta(seconds=180),
                                    heartbeat_timeout=timedelta(seconds=60),
                                    retry_policy=RetryPolicy(maximum_attempts=1))
        await workflow.wait_condition(lambda: self._look)
        return await workflow.execute_activity(names.GET_ROLLOUT_STATUS, ENDLESS, result_type=RolloutStatus,
                                               start_to_close_timeout=timedelta(seconds=30))


async def _all_polling(handle: WorkflowHandle[WaitsBesideALook, RolloutStatus]) -> bool:
    """Every wait has started and heartbeated at least one probe's verdict."""
    pending = (await handle.describe()).raw_description.pending_activities
    polling = [a for a in pending if a.activity_type.name == names.WAIT_FOR_ROLLOUT and a.heartbeat_details.payloads]
    return len(polling) == WAITS


@pytest.mark.filterwarnings("ignore:Worker max_concurrent_activities:UserWarning")  # fewer threads is the point
async def test_a_sync_look_runs_while_more_waits_than_threads_poll(
    dev_env: WorkflowEnvironment, kube: KubernetesActivities, task_queue: str
) -> None:
    with ThreadPoolExecutor(max_workers=EXECUTOR_THREADS) as executor:
        async with Worker(dev_env.client, task_queue=task_queue, workflows=[WaitsBesideALook],
                          activities=[kube.wait_for_rollout, kube.get_rollout_status],
                          activity_executor=executor, max_concurrent_activities=WAITS + 2):
            handle = await dev_env.client.start_workflow(WaitsBesideALook.run, WAITS, id=f"waits-{task_queue}",
                                                         task_queue=task_queue)
            try:
                await eventually(lambda: _all_polling(handle), timeout=30, what=f"{WAITS} waits polling")
                await handle.signal(WaitsBesideALook.look)
                # The waits cannot end for two minutes; the look has to get a thread beside them.
                status = await asyncio.wait_for(handle.result(), timeout=30)
                assert status.healthy, status.detail
            finally:
                with contextlib.suppress(RPCError):  # already completed: nothing to stop
                    await handle.terminate("test over")


async def test_a_cancelled_wait_ends_during_its_sleep(kube: KubernetesActivities, activity_env: Env) -> None:
    sleepy = ENDLESS.model_copy(update={"poll_seconds": 300})
    wait = asyncio.create_task(activity_env.env.run(kube.wait_for_rollout, sleepy))

    async def polled_once() -> bool:
        return bool(activity_env.heartbeats)

    await eventually(polled_once, timeout=10, what="the first poll")
    activity_env.env.cancel()
    with pytest.raises(asyncio.CancelledError):  # a TimeoutError instead would mean it slept on
        await asyncio.wait_for(wait, timeout=30)
