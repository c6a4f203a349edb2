"""Verified approvers at the Governor: resume, mode auto and close-breaker need a proof; tightening never does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.governor.support import running_governor
from tests.governor.test_governor_workflow import fail_once
from tests.security.approval_keys import ApproverKey
from zerotouch import governor_client as governor
from zerotouch.approval_proofs import CLOSE_BREAKER, MODE_AUTO, RESUME, ApprovalProof, Wanted
from zerotouch.governor_client import GovernorError
from zerotouch.governor_models import GovernorSettings

ALICE, BOB, MALLORY = (ApproverKey.generate(f"{name}@laptop") for name in ("alice", "bob", "mallory"))
RUNBOOK = "restart-crashlooping"


def verified_settings(**fields: Any) -> GovernorSettings:
    return GovernorSettings(approvers=["alice", "bob"], identity="verified",
                            approver_keys={"alice": [ALICE.public_line], "bob": [BOB.public_line]}, **fields)


async def proof(client: Client, cluster: str, key: ApproverKey, decision: str, by: str, runbook: str = "",
                **signing: Any) -> ApprovalProof:
    """Sign what the Governor's state asks for now (the CLI's --key does the same)."""
    return key.prove(await governor.wanted_proof(client, cluster, decision, by, runbook), **signing)


async def test_loosening_needs_a_valid_unused_proof_and_tightening_none(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    settings = verified_settings(breaker_failures=3, trust_prior_successes=50)
    async with running_governor(client, settings) as (cluster, handle):
        # Anyone may stop automation, without a proof.
        await governor.pause(client, cluster, "mallory", "odd", timedelta(hours=1))
        await governor.set_mode(client, cluster, "observe", "mallory")

        with pytest.raises(GovernorError, match="resume needs a proof signed by 'alice'"):
            await governor.resume(client, cluster, "alice")
        forged = await proof(client, cluster, MALLORY, RESUME, "alice")
        with pytest.raises(GovernorError, match=r"key SHA256:\S+ is not listed for 'alice'"):
            await governor.resume(client, cluster, "alice", proof=forged)
        expired = await proof(client, cluster, ALICE, RESUME, "alice", now=datetime.now(UTC) - timedelta(hours=1))
        with pytest.raises(GovernorError, match="expired at"):
            await governor.resume(client, cluster, "alice", proof=expired)
        for_this_pause = await proof(client, cluster, ALICE, RESUME, "alice")
        await governor.pause(client, cluster, "mallory", "still odd", timedelta(hours=2))
        with pytest.raises(GovernorError, match="the proof is for request_id 'pause-until-"):
            await governor.resume(client, cluster, "alice", proof=for_this_pause)
        status = await governor.governor_status(client, cluster)
        assert status.paused_by == "mallory" and status.mode == "observe", "refusals changed nothing"

        resumed = await governor.resume(client, cluster, "alice", proof=await proof(client, cluster, ALICE, RESUME,
                                                                                    "alice"))
        assert "resumed by alice" in resumed.message

        with pytest.raises(GovernorError, match="mode_auto needs a proof signed by 'bob'"):
            await governor.set_mode(client, cluster, "auto", "bob")
        to_auto = await proof(client, cluster, BOB, MODE_AUTO, "bob")
        await governor.set_mode(client, cluster, "auto", "bob", proof=to_auto)
        await governor.set_mode(client, cluster, "observe", "mallory")
        with pytest.raises(GovernorError, match="this proof was already used"):
            await governor.set_mode(client, cluster, "auto", "bob", proof=to_auto)
        assert (await governor.governor_status(client, cluster)).mode == "observe"
        await governor.set_mode(client, cluster, "auto", "bob", proof=await proof(client, cluster, BOB, MODE_AUTO,
                                                                                   "bob"))

        for index in range(3):  # three failed verifications open the runbook's breaker
            await fail_once(handle, index)
        with pytest.raises(GovernorError, match="close_breaker needs a proof signed by 'alice'"):
            await governor.close_breaker(client, cluster, RUNBOOK, "alice")
        wrong = ALICE.prove(Wanted(handle.id, "breaker-scale-up-web-opened-unknown", CLOSE_BREAKER, "alice"))
        with pytest.raises(GovernorError, match="request_id 'breaker-scale-up-web"):
            await governor.close_breaker(client, cluster, RUNBOOK, "alice", proof=wrong)
        closed = await governor.close_breaker(client, cluster, RUNBOOK, "alice", "looked at the logs",
                                              proof=await proof(client, cluster, ALICE, CLOSE_BREAKER, "alice",
                                                                RUNBOOK))
        assert "closed by alice" in closed.message
        journal = (await governor.governor_status(client, cluster)).journal
    loosened = [e for e in journal if e.what in ("resumed", "mode", "breaker closed") and e.by in ("alice", "bob")]
    assert [(e.by, e.what) for e in loosened] == [("alice", "resumed"), ("bob", "mode"), ("bob", "mode"),
                                                  ("alice", "breaker closed")]
    assert all("identity verified by SSH key SHA256:" in e.detail for e in loosened), loosened


async def test_asserted_approvers_need_no_proof_and_the_journal_says_so(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    async with running_governor(client, GovernorSettings(approvers=["alice"])) as (cluster, _):
        await governor.pause(client, cluster, "mallory", "odd", timedelta(hours=1))
        await governor.resume(client, cluster, "alice", "checked")
        journal = (await governor.governor_status(client, cluster)).journal
    assert journal[-1].what == "resumed" and journal[-1].detail == "checked (identity asserted, not verified)"
