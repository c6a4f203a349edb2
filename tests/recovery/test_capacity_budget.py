"""The Governor's capacity budget (node leases): pure rules, then one Governor whose lease holder vanished."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.governor.support import running_governor
from zerotouch.governor_models import GovernorBook, GovernorSettings
from zerotouch.node_lease_models import (
    SIGNAL_RENEW_NODE_LEASE,
    UPDATE_REQUEST_NODE_LEASE,
    NodeLeaseDecision,
    NodeLeaseRenewal,
    NodeLeaseRequest,
)
from zerotouch.node_leases import decide_lease, live, release_lease, renew_lease
from zerotouch.recovery_nodes import NodeRecoveryPolicy, min_schedulable_nodes

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NODES = ["n1", "n2", "n3", "n4"]


def _ask(node: str, holder: str, schedulable: list[str], *, total: int = 4, probe: bool = False) -> NodeLeaseRequest:
    return NodeLeaseRequest(node=node, holder=holder, total_nodes=total, schedulable=schedulable, probe=probe)


@pytest.mark.parametrize(("spec", "total", "expected"), [
    ("51%", 3, 2), ("51%", 4, 3), ("50%", 4, 2), ("100%", 5, 5), ("0%", 5, 0), (2, 10, 2), ("3", 10, 3),
])
def test_min_schedulable_rounds_a_share_up(spec: int | str, total: int, expected: int) -> None:
    policy = NodeRecoveryPolicy.model_validate({"min_schedulable": spec})
    assert min_schedulable_nodes(policy.min_schedulable, total) == expected


@pytest.mark.parametrize("bad", ["51", "-1", "101%", "half", -2, "5.5%"])
def test_a_bad_min_schedulable_is_refused_with_the_accepted_forms(bad: int | str) -> None:
    if bad == "51":
        assert NodeRecoveryPolicy.model_validate({"min_schedulable": bad}).min_schedulable == 51
        return
    with pytest.raises(ValueError, match="number of nodes"):
        NodeRecoveryPolicy.model_validate({"min_schedulable": bad})


def test_a_cordon_that_would_leave_too_few_schedulable_nodes_is_refused_and_changes_nothing() -> None:
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable="51%", node_max_concurrent=2)
    first = decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0)
    assert first.granted and first.schedulable_after == 3 and first.min_schedulable == 3
    # n2 NotReady: of n3, n4 only two stay schedulable while n1 is held; 51% of 4 is 3.
    before = book.model_copy(deep=True)
    second = decide_lease(book, settings, _ask("n2", "wf-2", ["n3", "n4"]), T0)
    assert (second.granted, second.code, second.schedulable_after) == (False, "min_schedulable", 2)
    assert "at least 3" in second.reason
    assert book == before


def test_the_concurrent_node_actions_are_bounded() -> None:
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable=0, node_max_concurrent=1)
    assert decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0).granted
    refused = decide_lease(book, settings, _ask("n2", "wf-2", NODES), T0)
    assert (refused.granted, refused.code) == (False, "max_concurrent")


def test_the_holder_asking_again_keeps_its_lease_and_another_holder_is_refused() -> None:
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable=0, node_max_concurrent=3)
    first = decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0)
    again = decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0 + timedelta(seconds=5))
    assert (again.code, again.lease_id) == ("held", first.lease_id)
    other = decide_lease(book, settings, _ask("n1", "wf-2", NODES), T0)
    assert (other.granted, other.code) == (False, "held_by_other")


def test_a_probe_decides_like_a_request_and_takes_nothing() -> None:
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable=0, node_max_concurrent=1)
    probe = decide_lease(book, settings, _ask("n1", "wf-1", NODES, probe=True), T0)
    assert probe.granted and book.node_leases == {}
    assert decide_lease(book, settings, _ask("n2", "wf-2", NODES), T0).granted


def test_a_lease_not_renewed_expires_and_renewing_keeps_it() -> None:
    ttl = timedelta(minutes=5)
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable=0, node_max_concurrent=1, node_lease_ttl=ttl)
    assert decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0).granted
    renewed_at = T0 + timedelta(minutes=4)
    assert "renewed" in renew_lease(book, settings, NodeLeaseRenewal(node="n1", holder="wf-1"), renewed_at)
    assert not decide_lease(book, settings, _ask("n2", "wf-2", NODES), renewed_at + ttl - timedelta(seconds=1)).granted
    # The holder vanished after its last renewal: past the TTL the lease no longer blocks anyone.
    after = renewed_at + ttl
    assert live(book, after) == {}
    granted = decide_lease(book, settings, _ask("n2", "wf-2", NODES), after)
    assert granted.granted and set(book.node_leases) == {"n2"}
    assert any(entry.what == "node lease expired" for entry in book.journal)


def test_only_the_holder_releases_and_a_release_frees_the_slot() -> None:
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable=0, node_max_concurrent=1)
    decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0)
    assert "holds no lease" in release_lease(book, NodeLeaseRenewal(node="n1", holder="wf-2"), T0)
    assert set(book.node_leases) == {"n1"}
    assert "released" in release_lease(book, NodeLeaseRenewal(node="n1", holder="wf-1"), T0)
    assert decide_lease(book, settings, _ask("n2", "wf-2", NODES), T0).granted


def test_a_lapsed_lease_is_taken_again_on_renewal_only_if_there_is_room() -> None:
    ttl = timedelta(minutes=1)
    book, settings = GovernorBook(), GovernorSettings(node_min_schedulable=0, node_max_concurrent=1, node_lease_ttl=ttl)
    decide_lease(book, settings, _ask("n1", "wf-1", NODES), T0)
    later = T0 + 2 * ttl
    decide_lease(book, settings, _ask("n2", "wf-2", NODES), later)
    assert "cannot be taken again" in renew_lease(book, settings, NodeLeaseRenewal(node="n1", holder="wf-1"), later)
    assert set(book.node_leases) == {"n2"}


def test_existing_grant_settings_keep_their_defaults() -> None:
    # The capacity budget only adds fields: every existing guardrail keeps its number.
    fields = GovernorSettings.model_fields
    assert {"node_min_schedulable", "node_max_concurrent", "node_lease_ttl"} <= set(fields)
    assert GovernorSettings().target_cooldown == timedelta(minutes=5)
    assert GovernorBook().node_leases == {}


async def test_a_governor_lets_the_lease_of_a_vanished_holder_expire(dev_env: WorkflowEnvironment) -> None:
    settings = GovernorSettings(node_min_schedulable=0, node_max_concurrent=1, node_lease_ttl=timedelta(seconds=2))
    async with running_governor(dev_env.client, settings) as (_cluster, handle):
        async def ask(node: str, holder: str) -> NodeLeaseDecision:
            decision: NodeLeaseDecision = await handle.execute_update(
                UPDATE_REQUEST_NODE_LEASE, _ask(node, holder, NODES), result_type=NodeLeaseDecision)
            return decision

        assert (await ask("n1", "gone-workflow")).granted
        # Renewed once, then its holder is gone: nobody renews again.
        await handle.signal(SIGNAL_RENEW_NODE_LEASE, NodeLeaseRenewal(node="n1", holder="gone-workflow"))
        assert (await ask("n2", "wf-2")).code == "max_concurrent"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not (decision := await ask("n2", "wf-2")).granted:
            assert decision.code == "max_concurrent", decision
            assert loop.time() < deadline, "the vanished holder's lease never expired"
            await asyncio.sleep(0.5)
