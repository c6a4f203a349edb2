"""The Governor's limits come only from the workers' policy: no client can loosen them.

A plain client's `update_settings`, a Governor started with looser settings, and a start that
claims to be a continued run are all held to what the workers' policy says.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from tests.governor.support import WorkersPolicy, ask, governor_worker, new_cluster, replay_and_record_governor
from tests.governor.test_governor_workflow import request
from zerotouch import governor_client as governor
from zerotouch.governor_models import (
    GOVERNOR_WORKFLOW,
    UPDATE_SETTINGS,
    GovernorAck,
    GovernorBook,
    GovernorInput,
    GovernorSettings,
    governor_id,
)
from zerotouch.names import WORKFLOWS_QUEUE, queue_for

STRICT = GovernorSettings(max_in_flight_per_namespace=1)
LOOSE = STRICT.model_copy(update={"max_in_flight_per_namespace": 100, "global_rate_per_minute": 10_000})


async def test_update_settings_from_a_plain_client_is_refused_and_recorded(time_env: WorkflowEnvironment) -> None:
    client, cluster = time_env.client, new_cluster()
    async with governor_worker(client, cluster, WorkersPolicy(STRICT)):
        handle = await client.start_workflow(
            GOVERNOR_WORKFLOW, GovernorInput(settings=STRICT, cluster=cluster), id=governor_id(cluster),
            task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(UPDATE_SETTINGS, LOOSE, result_type=GovernorAck)
        message = str(getattr(refused.value.cause, "message", refused.value.cause))
        assert "not the workers' policy" in message
        assert "global_rate_per_minute" in message and "max_in_flight_per_namespace" in message

        assert (await ask(handle, request(1))).granted
        assert (await ask(handle, request(2))).code == "blast_radius", "the limit stayed at one in flight"

        same = await handle.execute_update(UPDATE_SETTINGS, STRICT, result_type=GovernorAck)
        assert "match the workers' policy" in same.message, "the policy's own settings are accepted"
        await handle.terminate("test over")
    await replay_and_record_governor(client, handle.id, None, "governor-settings-refused")


@pytest.mark.parametrize("claims_continued", [False, True])
async def test_a_governor_started_with_looser_settings_runs_the_policys(
    time_env: WorkflowEnvironment, claims_continued: bool
) -> None:
    """Starting a Governor is open to any client; choosing its limits is not (nor claiming a continued run)."""
    client, cluster = time_env.client, new_cluster()
    async with governor_worker(client, cluster, WorkersPolicy(STRICT)):
        handle = await client.start_workflow(
            GOVERNOR_WORKFLOW,
            GovernorInput(settings=LOOSE, cluster=cluster, settings_from_policy=claims_continued),
            id=governor_id(cluster), task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert (await ask(handle, request(1))).granted
        assert (await ask(handle, request(2))).code == "blast_radius"
        await handle.terminate("test over")


async def test_a_changed_policy_reaches_the_running_governor(time_env: WorkflowEnvironment) -> None:
    client, cluster = time_env.client, new_cluster()
    policy = WorkersPolicy(STRICT)
    async with governor_worker(client, cluster, policy):
        handle = await client.start_workflow(
            GOVERNOR_WORKFLOW, GovernorInput(settings=STRICT, cluster=cluster), id=governor_id(cluster),
            task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
        assert (await ask(handle, request(1))).granted
        policy.settings = LOOSE  # an operator edited the policy file the workers read
        ack = await handle.execute_update(UPDATE_SETTINGS, LOOSE, result_type=GovernorAck)
        assert "updated from the workers' policy" in ack.message
        assert (await ask(handle, request(2))).granted
        await handle.terminate("test over")


async def test_a_governor_started_with_a_book_of_its_starters_choosing_starts_clean(
    time_env: WorkflowEnvironment,
) -> None:
    """The book (mode, pause, breakers, trust) is carried only by the Governor's own continue-as-new."""
    client, cluster = time_env.client, new_cluster()
    async with governor_worker(client, cluster, WorkersPolicy(STRICT)):
        handed = GovernorBook(mode="observe", next_grant=99)
        handle = await client.start_workflow(
            GOVERNOR_WORKFLOW, GovernorInput(settings=STRICT, cluster=cluster, book=handed),
            id=governor_id(cluster), task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
        grant = await ask(handle, request(1))
        assert grant.granted and grant.grant_id == "grant-1", grant
        assert (await governor.governor_status(client, cluster)).mode == "auto"
        await handle.terminate("test over")
