"""Verified approvals on a real incident: forged, expired, wrong-request and replayed proofs refused; signals too.

Real time on the dev server, the real workers and the sandbox, as in test_approvals.py (whose
helpers check that a refusal changes neither the status nor the history). A refused *signal*
cannot be refused at the server: it changes nothing but one timeline note saying why.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.security.approval_keys import ApproverKey
from tests.security.test_approvals import _accepted_updates, _rejected, _snapshot
from tests.support.zt import alert, open_incident, running_workers, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch.approval_proofs import APPROVE, REQUEST_RETRY, Wanted
from zerotouch.models import AbortInput, ApproveInput, IncidentStatus, RetryRequestInput, TakeOverInput
from zerotouch.names import SIGNAL_APPROVE, SIGNAL_REQUEST_RETRY, SIGNAL_TAKE_OVER
from zerotouch.policy import Policy

CRASH = {"namespace": "shop", "deployment": "web"}
KEYS = {name: ApproverKey.generate(f"{name}@laptop") for name in ("alice", "bob", "carol")}
MALLORY = ApproverKey.generate("mallory@elsewhere")
RESTART_ONCE = [{
    "name": "restart-once",
    "match": {"alertname": "KubePodCrashLooping"},
    "steps": [{"action": "restart_deployment"}],
    "verify": {"rollout": True, "hold_for": "200ms", "timeout": "2s"},
    "max_attempts": 1,
}]


@pytest.fixture
def cluster() -> str:
    return f"vrfy{uuid.uuid4().hex[:8]}"


def verified_policy(**overrides: Any) -> Policy:
    keys = {name: [key.public_line] for name, key in KEYS.items()}
    return make_policy(escalation={}, approvals={"identity": "verified", "keys": keys}, **overrides)


def wanted(handle: WorkflowHandle[Any, Any], status: IncidentStatus, decision: str, by: str) -> Wanted:
    assert status.pending_approval is not None
    return Wanted(handle.id, status.pending_approval.request_id, decision, by)


async def _signal_refused(handle: WorkflowHandle[Any, Any], signal: str, argument: Any, note: str) -> None:
    """The signal lands, changes nothing, and the timeline says why."""
    before, _ = await _snapshot(handle)
    await handle.signal(signal, argument)
    after = await wait_for(handle, lambda s: len(s.timeline) == len(before.timeline) + 1)
    assert after.model_copy(update={"timeline": before.timeline}) == before, "a refused signal changed the incident"
    refusal = after.timeline[-1]
    assert refusal.kind == "refused" and note in refusal.message, refusal


async def test_approve_needs_a_valid_unused_proof_for_this_request(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", **CRASH)
    policy = verified_policy(mode="approve-all")
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url, policy=policy):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        status = await wait_for(handle, lambda s: s.state == "awaiting_approval")
        claim = wanted(handle, status, APPROVE, "bob")
        bob = KEYS["bob"]

        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob"), "MissingProof",
                        "approve needs a proof signed by 'bob'")
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob", proof=MALLORY.prove(claim)),
                        "ForgedProof", "is not listed for 'bob' in the policy's approvals.keys")
        forged = bob.prove(claim).model_copy(update={"message": bob.prove(claim).message.replace("bob", "Bob")})
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob", proof=forged), "ForgedProof",
                        "does not match the message")
        stale = Wanted(handle.id, "an-earlier-request", APPROVE, "bob")
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob", proof=bob.prove(stale)),
                        "WrongRequest", "request_id 'an-earlier-request'")
        retry_claim = Wanted(handle.id, claim.request_id, REQUEST_RETRY, "bob")
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob", proof=bob.prove(retry_claim)),
                        "WrongRequest", "decision 'request_retry', not 'approve'")
        expired = bob.prove(claim, now=datetime.now(UTC) - timedelta(minutes=30))
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob", proof=expired), "ExpiredProof",
                        "expired at")
        await _signal_refused(handle, SIGNAL_APPROVE, ApproveInput(by="bob", proof=MALLORY.prove(claim)),
                              "approve signal from 'bob' refused (ForgedProof)")
        assert not sandbox.actions(include_failed=True), "nothing acted on a bad proof"

        proof = bob.prove(claim)
        await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", note="looked", proof=proof))
        resolved = await wait_for(handle, lambda s: s.state == "resolved")
        # The same proof again: nothing is pending, and the signal path says so too.
        await _rejected(handle, IncidentWorkflow.approve, ApproveInput(by="bob", proof=proof), "NothingToApprove",
                        "nothing awaits approval")
        # Stopping automation needs no proof, from anyone with namespace access.
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="dave", reason="test over"))
        await handle.result()
    approvals = [e for e in resolved.timeline if e.message.startswith("approved")]
    assert [e.actor for e in approvals] == ["bob"]
    assert "identity verified by SSH key SHA256:" in approvals[0].message
    assert await _accepted_updates(handle) == ["approve", "abort"]
    assert len(sandbox.actions(kind="restart")) == 1


async def test_retry_and_approve_by_signal_are_checked_like_updates(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("unfixable", **CRASH)
    policy = verified_policy(runbooks=RESTART_ONCE)
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url, policy=policy):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        frozen = await wait_for(handle, lambda s: s.state == "escalated" and s.frozen, timeout=60)
        alice = KEYS["alice"]
        await _signal_refused(handle, SIGNAL_REQUEST_RETRY, RetryRequestInput(by="alice"),
                              "request_retry signal from 'alice' refused (MissingProof)")
        await _signal_refused(handle, SIGNAL_REQUEST_RETRY, RetryRequestInput(by="mallory"),
                              "refused (NotAnApprover)")
        await _rejected(handle, IncidentWorkflow.request_retry,
                        RetryRequestInput(by="alice", proof=alice.prove(wanted(handle, frozen, APPROVE, "alice"))),
                        "WrongRequest", "decision 'approve', not 'request_retry'")

        retry = alice.prove(wanted(handle, frozen, REQUEST_RETRY, "alice"))
        await handle.signal(SIGNAL_REQUEST_RETRY, RetryRequestInput(by="alice", note="once more", proof=retry))
        asked = await wait_for(handle, lambda s: s.pending_approval is not None
                               and s.pending_approval.requested_by == "alice")
        # Replayed (by signal or update), the retry's proof names a request that is no longer pending.
        await _rejected(handle, IncidentWorkflow.request_retry, RetryRequestInput(by="alice", proof=retry),
                        "WrongRequest", "request_id")
        await _rejected(handle, IncidentWorkflow.approve,
                        ApproveInput(by="alice", proof=alice.prove(wanted(handle, asked, APPROVE, "alice"))),
                        "SelfApproval", "may not approve it")

        carol = ApproveInput(by="carol", proof=KEYS["carol"].prove(wanted(handle, asked, APPROVE, "carol")))
        await handle.signal(SIGNAL_APPROVE, carol)
        await wait_for(handle, lambda s: not s.frozen and s.pending_approval is None)
        await _signal_refused(handle, SIGNAL_APPROVE, carol, "approve signal from 'carol' refused (NothingToApprove)")
        # Taking over is tightening: by signal, without a proof, from someone who is not an approver.
        await handle.signal(SIGNAL_TAKE_OVER, TakeOverInput(by="dave", note="mine now"))
        owned = await wait_for(handle, lambda s: s.owner == "dave")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="dave", reason="test over"))
        final = await handle.result()
    assert owned.state == "taken_over" and final.state == "aborted"
    approvals = [e for e in final.timeline if e.message.startswith("approved")]
    assert [e.actor for e in approvals] == ["carol"] and "identity verified" in approvals[0].message
    assert len(sandbox.actions(kind="restart")) == 1, "the approved retry waited for the target's cooldown"
    assert await _accepted_updates(handle) == ["abort"], "every other decision came by signal"


async def test_asserted_mode_is_unchanged_and_says_asserted(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", **CRASH)
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH),
                                     make_policy(mode="approve-all", escalation={}))
        await wait_for(handle, lambda s: s.state == "awaiting_approval")
        await _signal_refused(handle, SIGNAL_APPROVE, ApproveInput(by="mallory"),
                              "approve signal from 'mallory' refused (NotAnApprover)")
        await handle.signal(SIGNAL_APPROVE, ApproveInput(by="bob"))
        resolved = await wait_for(handle, lambda s: s.state == "resolved")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
        await handle.result()
    approvals = [e for e in resolved.timeline if e.message.startswith("approved")]
    assert [e.actor for e in approvals] == ["bob"]
    assert approvals[0].message.endswith("(identity asserted, not verified)") or \
        approvals[0].message.endswith("— identity asserted, not verified"), approvals[0].message


async def test_a_pinned_policy_cannot_bypass_the_workers_verified_approvers(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    """Whoever starts an incident may pin its policy, asserted and with their own key; the Governor's
    keys are the workers' policy's, so the approved action is refused and nothing acts."""
    sandbox.inject("crashloop", **CRASH)
    pinned = make_policy(mode="approve-all", escalation={},
                         approvals={"identity": "verified", "keys": {name: [MALLORY.public_line] for name in KEYS}})
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url,
                               policy=verified_policy(mode="approve-all")):
        for policy, proof_by in ((make_policy(mode="approve-all", escalation={}), None), (pinned, MALLORY)):
            handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
            status = await wait_for(handle, lambda s: s.state == "awaiting_approval")
            proof = proof_by.prove(wanted(handle, status, APPROVE, "bob")) if proof_by else None
            await handle.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", proof=proof))
            refused = await wait_for(handle, lambda s: any("not proven" in e.message for e in s.timeline))
            await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
            await handle.result()
            assert refused.state == "escalated", refused.state
    assert not sandbox.actions(include_failed=True), "an approval the workers' keys do not prove never acts"
