"""IncidentWorkflow on the time-skipping server, with the real workers and a sandbox cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters import steer
from starters.steer import SteerError
from tests.support.receiver import Receiver
from tests.support.zt import alert, open_incident, replay_and_record, running_workers, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch.ledger_store import open_ledger
from zerotouch.models import AbortInput, ApproveInput, RetryRequestInput, TakeOverInput


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def cluster() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _kinds(status: object) -> list[str]:
    return [entry.kind for entry in status.timeline]  # type: ignore[attr-defined]


async def test_crashloop_is_restarted_once_verified_and_resolved(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, tmp_path: Path
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    ledger_url = f"sqlite:///{tmp_path}/ledger.db"
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url, ledger_url=ledger_url):
        handle = await open_incident(
            time_env.client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"), make_policy()
        )
        status = await wait_for(handle, lambda s: s.state == "resolved")
        final = await handle.result()  # skips the 10 minute resolution cooldown
    await replay_and_record(handle, "crashloop-resolved")
    assert final.state == "resolved" and final.runbook == "restart-crashlooping"
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
    assert sandbox.is_healthy("shop", "web")
    for kind in ("detected", "triage", "action", "verification", "resolution"):
        assert kind in _kinds(status), f"timeline lacks {kind}"
    [record] = open_ledger(ledger_url).get(handle.id)
    assert record.outcome == "resolved" and record.automated and record.runbook == "restart-crashlooping"
    assert [a.action for a in record.actions] == ["restart_deployment"]
    assert "## Timeline" in record.postmortem and open_ledger(ledger_url).verify().ok
    assert all(b.at >= a.at for a, b in zip(final.timeline, final.timeline[1:], strict=False))


async def test_unfixable_escalates_and_freezes_after_two_attempts(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, receiver: Receiver, cluster: str
) -> None:
    sandbox.inject("unfixable", namespace="shop", deployment="web")
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(
            time_env.client,
            cluster,
            alert("KubePodCrashLooping", severity="critical", namespace="shop", deployment="web"),
            make_policy(receiver.url),
        )
        # The cooldown (the 5 minute target cooldown) passes by time skipping on the test server.
        await wait_for(handle, lambda s: "retrying after a cooldown" in s.timeline[-1].message)
        await time_env.sleep(timedelta(minutes=6))
        status = await wait_for(handle, lambda s: s.state == "escalated")
        assert status.frozen and status.attempts == 2
        assert status.pending_approval is not None
        # Frozen: hours pass, no further automated action.
        await time_env.sleep(timedelta(hours=3))
        assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 2
        status = await handle.query(IncidentWorkflow.status)
        assert status.state == "escalated" and status.attempts == 2
        chat = [body for path, body in receiver.received if path == "/chat"]
        assert chat and "automation gave up" in chat[0]["text"]
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
        assert (await handle.result()).state == "aborted"
    await replay_and_record(handle, "unfixable-escalated-frozen")


async def test_no_runbook_climbs_the_escalation_ladder_in_skipped_time(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, receiver: Receiver, cluster: str
) -> None:
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(
            time_env.client, cluster, alert("SomethingOdd", severity="critical", namespace="shop"),
            make_policy(receiver.url),
        )
        status = await wait_for(handle, lambda s: s.state == "escalated")
        assert status.runbook is None and status.frozen and status.pending_approval is None
        assert not [p for p, _ in receiver.received if p == "/pager"], "P1 pages only after 5 minutes"
        await time_env.sleep(timedelta(minutes=6))
        await wait_for(handle, lambda s: any("unresolved after 5m" in e.message for e in s.timeline))
        await time_env.sleep(timedelta(hours=2))
        status = await wait_for(handle, lambda s: any("unresolved after 2h" in e.message for e in s.timeline))
        pages = [body for path, body in receiver.received if path == "/pager"]
        assert len(pages) == 2
        await handle.execute_update(IncidentWorkflow.take_over, TakeOverInput(by="carol"))
        await handle.signal(IncidentWorkflow.alert_resolved, alert("SomethingOdd", "resolved", severity="critical",
                                                                     namespace="shop"))
        final = await handle.result()
    assert final.state == "resolved" and final.owner == "carol"
    await replay_and_record(handle, "no-runbook-ladder-take-over")


async def test_approval_rules_unlisted_self_and_valid(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    policy = make_policy(mode="approve-all")
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(
            time_env.client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"), policy
        )
        status = await wait_for(handle, lambda s: s.state == "awaiting_approval")
        assert status.pending_approval and "approve-all" in status.pending_approval.reason
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="mallory"))
        assert "not an approver" in str(rejected.value.cause)
        assert not sandbox.actions(namespace="shop", name="web", kind="restart"), "nothing acted before approval"
        decision = await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", note="go"))
        assert "approved by bob" in decision.message
        await wait_for(handle, lambda s: s.state == "resolved")
        final = await handle.result()
    await replay_and_record(handle, "approve-all-approved")
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
    assert any(e.actor == "bob" and e.kind == "approval" for e in final.timeline)


async def test_retry_request_needs_a_second_approver(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, receiver: Receiver, cluster: str
) -> None:
    sandbox.inject("unfixable", namespace="shop", deployment="web")
    policy = make_policy(receiver.url, runbooks=[{
        "name": "restart-once",
        "match": {"alertname": "KubePodCrashLooping"},
        "steps": [{"action": "restart_deployment"}],
        "verify": {"hold_for": "200ms", "timeout": "2s"},
        "max_attempts": 1,
    }])
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(
            time_env.client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"), policy
        )
        await wait_for(handle, lambda s: s.state == "escalated")
        await handle.execute_update(IncidentWorkflow.request_retry, RetryRequestInput(by="alice", note="one more"))
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="alice"))
        assert "may not approve" in str(rejected.value.cause)
        status = await handle.query(IncidentWorkflow.status)
        assert status.pending_approval and status.pending_approval.requested_by == "alice", "no state change"
        sandbox.clear(namespace="shop", deployment="web")
        sandbox.inject("crashloop", namespace="shop", deployment="web")
        await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="carol"))
        await wait_for(handle, lambda s: "target cooldown" in s.timeline[-1].message)
        await time_env.sleep(timedelta(minutes=6))
        await wait_for(handle, lambda s: s.state == "resolved")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="done"))
        final = await handle.result()
        with pytest.raises(SteerError, match=r"is over \(aborted\)"):
            await steer.approve(time_env.client, handle.id, "carol")
    await replay_and_record(handle, "retry-four-eyes")
    assert final.attempts == 2
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 2


async def test_abort_before_action_acts_never(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(
            time_env.client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"),
            make_policy(mode="approve-all"),
        )
        await wait_for(handle, lambda s: s.state == "awaiting_approval")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="false positive"))
        final = await handle.result()
    await replay_and_record(handle, "aborted-before-action")
    assert final.state == "aborted" and not sandbox.actions(namespace="shop", name="web")


async def test_refire_within_cooldown_joins_the_same_incident(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    fired = alert("KubePodCrashLooping", namespace="shop", deployment="web")
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, fired, make_policy())
        await wait_for(handle, lambda s: s.state == "resolved")
        sandbox.inject("crashloop", namespace="shop", deployment="web")
        resolved = fired.model_copy(update={"status": "resolved"})
        await handle.signal(IncidentWorkflow.alert_resolved, resolved)
        for _ in range(3):  # the first is a flap, the rest repeats that are absorbed
            await handle.signal(IncidentWorkflow.alert_fired, fired)
        again = await open_incident(time_env.client, cluster, fired, incident_id=handle.id)
        assert again.result_run_id == handle.result_run_id, "signal-with-start joined the open incident"
        status = await wait_for(handle, lambda s: "target cooldown" in s.timeline[-1].message)
        assert status.attempts == 1, "no second action inside the 5 minute target cooldown"
        await time_env.sleep(timedelta(minutes=6))
        await wait_for(handle, lambda s: s.attempts == 2 and s.state == "resolved")
        final = await handle.result()
    await replay_and_record(handle, "refire-joins")
    assert final.alerts_received == 6
    assert sum("(flap)" in e.message for e in final.timeline) == 1
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 2


async def test_an_escalated_incident_that_clears_and_fires_again_stays_one_incident(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    fired = alert("SomethingOdd", namespace="shop")
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, fired, make_policy(escalation={}))
        await wait_for(handle, lambda s: s.state == "escalated")
        await handle.signal(IncidentWorkflow.alert_resolved, fired.model_copy(update={"status": "resolved"}))
        await wait_for(handle, lambda s: s.state == "resolved")
        await handle.signal(IncidentWorkflow.alert_fired, fired)
        status = await wait_for(handle, lambda s: s.state == "escalated" and s.firing)
        assert status.frozen, "back to a human: still no automated action"
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="done"))
        final = await handle.result()
    assert final.state == "aborted" and not sandbox.actions()
