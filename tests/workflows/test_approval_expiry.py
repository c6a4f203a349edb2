"""Requests for approval expire: a late approval never runs an action planned for an older situation.

On the time-skipping server: an approval one second after expiry is refused with a message, the
lapse is recorded and nothing acts; the incident stays escalated until a person asks for a retry,
which asks again with a fresh deadline.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.support.zt import alert, open_incident, replay_and_record, running_workers, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch.approval_policy import DEFAULT_EXPIRY, Approvals
from zerotouch.models import AbortInput, ApproveInput, RetryRequestInput

CRASH = {"namespace": "shop", "deployment": "web"}
STANDS_FOR = timedelta(minutes=10)


@pytest.fixture
def cluster() -> str:
    return f"exp{uuid.uuid4().hex[:8]}"


def restarts(sandbox: SandboxCluster) -> int:
    return len(sandbox.actions(namespace="shop", name="web", kind="restart"))


async def test_an_approval_one_second_after_expiry_is_refused_and_a_retry_asks_again(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    client = time_env.client
    sandbox.inject("crashloop", **CRASH)
    policy = make_policy(mode="approve-all", escalation={}, approvals={"expire_after": {"P3": "10m"}})
    async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy):
        handle = await open_incident(client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        asked = await wait_for(handle, lambda s: s.state == "awaiting_approval")
        assert asked.pending_approval is not None and asked.pending_approval.expires_at is not None
        assert asked.pending_approval.expires_at - asked.pending_approval.requested_at == STANDS_FOR

        await time_env.sleep(STANDS_FOR + timedelta(seconds=1))
        with pytest.raises(WorkflowUpdateFailedError) as late:
            await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", note="sorry, late"))
        assert "expired" in str(late.value.cause) and "ask for a retry" in str(late.value.cause)
        lapsed = await wait_for(handle, lambda s: s.frozen)
        assert lapsed.state == "escalated" and restarts(sandbox) == 0, "nothing acted on the lapsed request"
        assert any("expired unanswered" in e.message for e in lapsed.timeline), lapsed.timeline

        # A person asks again: another approver allows the retry, the Governor wants approval
        # again (approve-all), and that fresh request, answered in time, acts.
        await handle.execute_update(IncidentWorkflow.request_retry, RetryRequestInput(by="alice", note="try again"))
        await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", note="retry"))
        again = await wait_for(handle, lambda s: s.state == "awaiting_approval")
        assert again.pending_approval is not None and again.pending_approval.request_id != \
            asked.pending_approval.request_id
        await time_env.sleep(STANDS_FOR - timedelta(seconds=5))
        await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="carol", note="in time"))
        await wait_for(handle, lambda s: s.state == "resolved")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
        await handle.result()
    assert restarts(sandbox) == 1
    await replay_and_record(handle, "approval-expired-then-retried")


async def test_a_retry_request_expires_too(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    client = time_env.client
    sandbox.inject("unfixable", **CRASH)
    runbook = {"name": "restart-once", "match": {"alertname": ["KubePodCrashLooping"]},
               "steps": [{"action": "restart_deployment"}], "max_attempts": 1,
               "verify": {"rollout": True, "hold_for": "200ms", "timeout": "2s"}}
    policy = make_policy(escalation={}, runbooks=[runbook], approvals={"expire_after": {"P3": "10m"}})
    async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy):
        handle = await open_incident(client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        await wait_for(handle, lambda s: s.frozen)
        await handle.execute_update(IncidentWorkflow.request_retry, RetryRequestInput(by="alice"))
        await time_env.sleep(STANDS_FOR + timedelta(seconds=1))
        with pytest.raises(WorkflowUpdateFailedError, match="Workflow update failed") as late:
            await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob"))
        assert "expired" in str(late.value.cause)
        status = await wait_for(handle, lambda s: any("expired unanswered" in e.message for e in s.timeline))
        assert status.frozen and status.pending_approval is None and restarts(sandbox) == 1
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
        await handle.result()


def test_expiry_defaults_follow_severity_and_reject_nonsense() -> None:
    approvals = Approvals()
    assert approvals.expiry_for("P0") == DEFAULT_EXPIRY["P0"] < approvals.expiry_for("P2") < approvals.expiry_for("P4")
    assert approvals.expiry_for(None) == DEFAULT_EXPIRY["P3"]
    assert Approvals.model_validate({"expire_after": {"P1": "5m"}}).expiry_for("P1") == timedelta(minutes=5)
    with pytest.raises(ValueError, match="longer than zero"):
        Approvals.model_validate({"expire_after": {"P1": "0s"}})
