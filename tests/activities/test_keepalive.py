"""`keeps_alive`: a blocking action is not timed out while its worker lives, on a real dev server."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import get_args

import pytest
from kubernetes import client
from temporalio import activity
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, TimeoutError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import KubernetesActivities, PostgresActivities
from activities.keepalive import heartbeating, is_kept_alive, keeps_alive
from tests.activities.heartbeat_probe import HeartbeatProbe, ProbeInput
from zerotouch.action_params import ActionName

BLOCKS_FOR = 3.0  # three heartbeat timeouts without a word from the activity itself
HEARTBEAT = 1.0


@activity.defn(name="blocking_kept_alive")
@keeps_alive
def blocking_kept_alive(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@activity.defn(name="blocking_silent")
def blocking_silent(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


async def _run_probe(env: WorkflowEnvironment, name: str) -> tuple[str | BaseException, list[int]]:
    queue = f"keepalive-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=2) as executor:
        async with Worker(env.client, task_queue=queue, workflows=[HeartbeatProbe],
                          activities=[blocking_kept_alive, blocking_silent], activity_executor=executor):
            handle = await env.client.start_workflow(
                HeartbeatProbe.run, ProbeInput(name, BLOCKS_FOR, HEARTBEAT),
                id=f"probe-{uuid.uuid4().hex}", task_queue=queue)
            outcome: str | BaseException
            try:
                outcome = await handle.result()
            except WorkflowFailureError as failure:
                outcome = failure.cause
            attempts = [event.activity_task_started_event_attributes.attempt
                        async for event in handle.fetch_history_events()
                        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    return outcome, attempts


async def test_a_kept_alive_activity_outlives_its_heartbeat_timeout(dev_env: WorkflowEnvironment) -> None:
    outcome, attempts = await _run_probe(dev_env, "blocking_kept_alive")
    assert outcome == "done"
    assert attempts == [1]


async def test_a_silent_activity_is_timed_out_by_the_same_heartbeat_timeout(dev_env: WorkflowEnvironment) -> None:
    # The control: without keeps_alive the same block is a heartbeat timeout, so the test above
    # passes because of the helper thread, not because the server is lenient.
    outcome, _ = await _run_probe(dev_env, "blocking_silent")
    assert isinstance(outcome, ActivityError), outcome
    assert isinstance(outcome.cause, TimeoutError), outcome.cause
    assert outcome.cause.type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT


def test_outside_an_activity_it_runs_the_block_without_a_helper() -> None:
    before = {t.name for t in threading.enumerate()}
    with heartbeating():
        during = {t.name for t in threading.enumerate()}
    assert during == before
    assert blocking_kept_alive(0) == "done"


def test_every_action_activity_keeps_alive() -> None:
    # apply_action sets a heartbeat timeout on every action; an action that did not heartbeat
    # would be timed out whenever its API call took longer than that.
    api = client.ApiClient(client.Configuration())
    try:
        instances = [KubernetesActivities(api_client=api), PostgresActivities(dsn_for=lambda ref: "")]
        by_name = {}
        for instance in instances:
            for attribute in dir(type(instance)):
                definition = activity._Definition.from_callable(getattr(type(instance), attribute))
                if definition is not None:
                    by_name[definition.name] = getattr(instance, attribute)
    finally:
        api.close()
    actions = set(get_args(ActionName)) - {"escalate"}  # escalate is the workflow's own step
    assert actions <= set(by_name), actions - set(by_name)
    assert [name for name in sorted(actions) if not is_kept_alive(by_name[name])] == []
    assert not is_kept_alive(by_name["wait_for_rollout"])  # it heartbeats its own progress


@pytest.mark.parametrize("name", ["restart_deployment", "terminate_idle_connections"])
def test_the_decorated_action_keeps_its_signature(name: str) -> None:
    # The worker decodes arguments by the type hints, which must survive the wrapper.
    api = client.ApiClient(client.Configuration())
    try:
        instance = KubernetesActivities(api_client=api) if name != "terminate_idle_connections" \
            else PostgresActivities(dsn_for=lambda ref: "")
        definition = activity._Definition.must_from_callable(getattr(type(instance), name))
    finally:
        api.close()
    assert definition.arg_types is not None and definition.arg_types[0].__name__ == "ActionRequest"
    assert definition.ret_type is not None and definition.ret_type.__name__ == "ActionResult"
