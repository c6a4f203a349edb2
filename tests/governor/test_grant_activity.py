"""The request_grant activity: starts the Governor once, and again if it is gone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.governor import GovernorActivities
from tests.governor.support import WorkersPolicy, governor_worker, new_cluster
from tests.governor.test_governor_workflow import request
from zerotouch.governor_client import execute_grant
from zerotouch.governor_models import GovernorSettings, GrantDecision, governor_id
from zerotouch.governor_policy import GrantCall


async def test_a_terminated_governor_is_started_again_and_new_settings_are_pushed(dev_env: WorkflowEnvironment) -> None:
    client, cluster = dev_env.client, new_cluster()
    activities = GovernorActivities(client=client)
    settings = GovernorSettings()
    policy = WorkersPolicy(settings)
    async with governor_worker(client, cluster, policy):
        first = await activities.request_grant(GrantCall(cluster=cluster, settings=settings, request=request(1)))
        assert first.granted
        handle = client.get_workflow_handle(governor_id(cluster))
        await handle.terminate("operator removed it")
        assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED

        again = await activities.request_grant(GrantCall(cluster=cluster, settings=settings, request=request(2)))
        assert again.granted, again.reason
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        stricter = settings.model_copy(update={"max_in_flight_per_namespace": 1})
        policy.settings = stricter  # the policy file changed, and incidents now carry its settings
        refused = await activities.request_grant(GrantCall(cluster=cluster, settings=stricter, request=request(3)))
        assert refused.code == "blast_radius", "the changed policy reached the running Governor"
        await handle.terminate("test over")


async def test_settings_that_are_not_the_workers_policy_never_reach_the_governor(
    dev_env: WorkflowEnvironment,
) -> None:
    """A pinned policy (or a client) proposing looser limits: refused, on record, and grants keep the policy's."""
    client, cluster = dev_env.client, new_cluster()
    activities = GovernorActivities(client=client)
    strict = GovernorSettings(max_in_flight_per_namespace=1)
    async with governor_worker(client, cluster, WorkersPolicy(strict)):
        loose = strict.model_copy(update={"max_in_flight_per_namespace": 50})
        first = await activities.request_grant(GrantCall(cluster=cluster, settings=loose, request=request(1)))
        assert first.granted
        second = await activities.request_grant(GrantCall(cluster=cluster, settings=loose, request=request(2)))
        assert second.code == "blast_radius", "the Governor kept the workers' limit of one in flight"
        handle = client.get_workflow_handle(governor_id(cluster))
        history = await handle.fetch_history()
        refusals = [event for event in history.events
                    if event.workflow_execution_update_completed_event_attributes.outcome.failure.message]
        assert any("not the workers' policy" in event.workflow_execution_update_completed_event_attributes
                   .outcome.failure.message for event in refusals), "the refusal is in the Governor's history"
        await handle.terminate("test over")


class _FlakyGovernor:
    """A handle whose first update fails as the server fails it when the workflow task that would run it failed."""

    def __init__(self, first_error: RPCError) -> None:
        self.first_error: RPCError | None = first_error
        self.calls = 0

    async def execute_update(self, *_: object, **__: object) -> GrantDecision:
        self.calls += 1
        if self.first_error is not None:
            error, self.first_error = self.first_error, None
            raise error
        return GrantDecision(request_id="r1", granted=True, code="granted", reason="ok", decided_at=datetime.now(UTC))


async def test_an_update_whose_workflow_task_failed_is_asked_again() -> None:
    failed = RPCError("Unable to perform workflow execution update due to unexpected workflow task failure.",
                      RPCStatusCode.FAILED_PRECONDITION, b"")
    governor = _FlakyGovernor(failed)
    decision = await execute_grant(governor, request(1))  # type: ignore[arg-type]
    assert decision.granted and governor.calls == 2


async def test_other_refusals_are_not_retried() -> None:
    refused = RPCError("workflow execution already completed", RPCStatusCode.FAILED_PRECONDITION, b"")
    governor = _FlakyGovernor(refused)
    with pytest.raises(RPCError):
        await execute_grant(governor, request(1))  # type: ignore[arg-type]
    assert governor.calls == 1
