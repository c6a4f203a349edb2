"""Approvals: the update validators refuse, say why, and change nothing — not the status, not the history.

Real time on the dev server, the real workers and the sandbox. A rejected update never
reaches the history (Temporal drops it at the validator), so "no change" is checked
three ways: the status query is identical, the history has not grown, and no update
was accepted. tests/workflows/test_incident.py covers the happy paths.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters import steer
from starters.steer import SteerError
from tests.support.zt import alert, open_incident, running_workers, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch.models import AbortInput, ApproveInput, IncidentStatus, RetryRequestInput, TakeOverInput

CRASH = {"namespace": "shop", "deployment": "web"}


@pytest.fixture
def cluster() -> str:
    return f"appr{uuid.uuid4().hex[:8]}"


async def _accepted_updates(handle: WorkflowHandle[Any, Any]) -> list[str]:
    history = await handle.fetch_history()
    return [event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for event in history.events if event.HasField("workflow_execution_update_accepted_event_attributes")]


async def _snapshot(handle: WorkflowHandle[Any, Any]) -> tuple[IncidentStatus, int]:
    """Status and history length once the workflow is idle (two equal readings in a row)."""
    previous: tuple[IncidentStatus, int] | None = None
    for _ in range(50):
        current = (await handle.query(IncidentWorkflow.status), len((await handle.fetch_history()).events))
        if current == previous:
            return current
        previous = current
        await asyncio.sleep(0.2)
    raise AssertionError(f"{handle.id} never became idle")


async def _rejected(handle: WorkflowHandle[Any, Any], update: Any, argument: Any, kind: str, message: str) -> None:
    before = await _snapshot(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(update, argument)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == kind, cause
    assert message in str(cause), str(cause)
    assert await _snapshot(handle) == before, f"{kind} changed the status or the history"


async def test_unlisted_names_and_a_second_approval_are_refused(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", **CRASH)
    policy = make_policy(mode="approve-all", escalation={})
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        await wait_for(handle, lambda s: s.state == "awaiting_approval")
        # Someone not in the policy, a group's name, a look-alike of an approver, zerotouch itself.
        for name in ("mallory", "sre", "Alice", "alice\u200b", "zerotouch"):
            await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by=name), "NotAnApprover",
                            f"{name!r} is not an approver in the policy")
        assert not sandbox.actions(include_failed=True), "nothing acted while only strangers approved"

        await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", note="looked at it"))
        # The approval is consumed by the first approver; a second one has nothing to approve.
        with pytest.raises(WorkflowUpdateFailedError) as second:
            await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="carol"))
        assert isinstance(second.value.cause, ApplicationError) and second.value.cause.type == "NothingToApprove"
        assert "nothing awaits approval" in str(second.value.cause)
        status = await wait_for(handle, lambda s: s.state == "resolved")
        assert await _accepted_updates(handle) == ["approve"]
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
        await handle.result()
    approvals = [entry for entry in status.timeline if entry.message.startswith("approved")]
    assert [entry.actor for entry in approvals] == ["bob"]
    assert len(sandbox.actions(include_failed=True)) == 1 and len(sandbox.actions(kind="restart")) == 1


async def test_four_eyes_refuses_a_self_approval(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("unfixable", **CRASH)
    policy = make_policy(escalation={}, runbooks=[{
        "name": "restart-once",
        "match": {"alertname": "KubePodCrashLooping"},
        "steps": [{"action": "restart_deployment"}],
        "verify": {"rollout": True, "hold_for": "200ms", "timeout": "2s"},
        "max_attempts": 1,
    }])
    assert policy.four_eyes
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        await wait_for(handle, lambda s: s.state == "escalated" and s.frozen, timeout=60)
        await handle.execute_update(IncidentWorkflow.request_retry, RetryRequestInput(by="alice", note="once more"))
        status = await wait_for(handle, lambda s: s.pending_approval is not None
                                and s.pending_approval.requested_by == "alice")
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="alice"), "SelfApproval",
                        "'alice' requested this and may not approve it; another approver must")
        assert (await handle.query(IncidentWorkflow.status)).pending_approval == status.pending_approval
        assert len(sandbox.actions(kind="restart")) == 1, "the self-approved retry never ran"
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="bob", reason="test over"))
        final = await handle.result()
    assert final.state == "aborted" and final.attempts == 1
    assert await _accepted_updates(handle) == ["request_retry", "abort"]


async def test_nothing_is_accepted_after_an_abort(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, tmp_path: Path
) -> None:
    """Between the abort and the end of the run (here held open by a locked ledger), the validators refuse."""
    sandbox.inject("crashloop", **CRASH)
    ledger = tmp_path / "ledger.db"
    policy = make_policy(mode="approve-all", escalation={})
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url, ledger_url=f"sqlite:///{ledger}"):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        await wait_for(handle, lambda s: s.state == "awaiting_approval")
        # Another writer holds the ledger: the closing record waits, so the aborted run stays open.
        holder = sqlite3.connect(ledger, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="false positive"))
            await wait_for(handle, lambda s: s.state == "aborted")
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob"), "IncidentClosed",
                            f"incident {handle.id} is aborted")
            await _rejected(handle, IncidentWorkflow.take_over, TakeOverInput(by="carol"), "IncidentClosed",
                            "is aborted")
            await _rejected(handle, IncidentWorkflow.abort, AbortInput(by="bob", reason="again"), "IncidentClosed",
                            "is aborted")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        final = await asyncio.wait_for(handle.result(), 120)
        with pytest.raises(SteerError, match=r"is over \(aborted\)"):
            await steer.approve(dev_env.client, handle.id, "bob")
    assert final.state == "aborted" and not final.actions
    assert not [entry for entry in final.timeline if entry.message.startswith("approved")]
    assert await _accepted_updates(handle) == ["abort"]
    assert not sandbox.actions(include_failed=True), "an aborted incident never acts"
