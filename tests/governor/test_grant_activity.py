"""The request_grant activity: starts the Governor once, and again if it is gone."""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.governor import GovernorActivities
from tests.governor.support import governor_worker, new_cluster
from tests.governor.test_governor_workflow import request
from zerotouch.governor_models import GovernorSettings, governor_id
from zerotouch.governor_policy import GrantCall


async def test_a_terminated_governor_is_started_again_and_new_settings_are_pushed(dev_env: WorkflowEnvironment) -> None:
    client, cluster = dev_env.client, new_cluster()
    activities = GovernorActivities(client=client)
    settings = GovernorSettings()
    async with governor_worker(client, cluster):
        first = await activities.request_grant(GrantCall(cluster=cluster, settings=settings, request=request(1)))
        assert first.granted
        handle = client.get_workflow_handle(governor_id(cluster))
        await handle.terminate("operator removed it")
        assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED

        again = await activities.request_grant(GrantCall(cluster=cluster, settings=settings, request=request(2)))
        assert again.granted, again.reason
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        stricter = settings.model_copy(update={"max_in_flight_per_namespace": 1})
        refused = await activities.request_grant(GrantCall(cluster=cluster, settings=stricter, request=request(3)))
        assert refused.code == "blast_radius", "the changed policy reached the running Governor"
        await handle.terminate("test over")
