"""Storms against the GovernorWorkflow: hundreds of concurrent grant requests and outcome reports.

The invariants are checked on the decisions the workflow actually returned. Outcome reports
are sent between concurrent batches, so the order of every release against every grant is known.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import time_skipping_env
from tests.governor import strategies
from tests.governor.invariants import Ledger, check
from tests.governor.support import ask, running_governor
from zerotouch.governor_models import (
    SIGNAL_REPORT_OUTCOME,
    GovernorSettings,
    GrantDecision,
    GrantRequest,
    OutcomeReport,
)


@st.composite
def storm(draw: Any) -> list[tuple[list[GrantRequest], float, float]]:
    """Batches of (requests sent at once, share of open grants then reported, seconds to skip after)."""
    batches: list[tuple[list[GrantRequest], float, float]] = []
    made: list[GrantRequest] = []
    for _ in range(draw(st.integers(2, 4))):
        requests = draw(strategies.stream(draw(st.integers(40, 110)), made))
        made += requests
        batches.append((requests, draw(st.floats(0, 1)), draw(st.sampled_from([0.0, 30.0, 61.0, 400.0]))))
    return batches


async def report(handle: WorkflowHandle[Any, Any], ledger: Ledger, share: float, verified: bool) -> None:
    open_grants = sorted({str(d.grant_id) for _, _, d in ledger.decisions if d.granted} - set(ledger.released))
    chosen = open_grants[: round(len(open_grants) * share)]
    await asyncio.gather(*(handle.signal(SIGNAL_REPORT_OUTCOME, OutcomeReport(grant_id=g, verified=verified))
                           for g in chosen))
    for grant_id in chosen:
        ledger.release(grant_id)


# Few examples, no shrinking: each one is a real workflow taking hundreds of updates.
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(policy=strategies.settings(), batches=storm(), verified=st.booleans(), small_runs=st.booleans())
async def test_concurrent_storms_keep_every_invariant(
    policy: GovernorSettings, batches: list[tuple[list[GrantRequest], float, float]], verified: bool,
    small_runs: bool,
) -> None:
    ledger = Ledger(policy, ordered=False)
    # A server per example: each example skips minutes of time, which the test server does only
    # while nothing is in flight; a task an earlier example left behind must not stall this one.
    async with time_skipping_env() as time_env, running_governor(
            time_env.client, policy, continue_as_new_after=60 if small_runs else 500) as (_, handle):
        for requests, share, skip in batches:
            decisions = await asyncio.gather(*(ask(handle, r) for r in requests))
            ledger.decisions += [(d.decided_at, r, d) for r, d in zip(requests, decisions, strict=True)]
            await report(handle, ledger, share, verified)
            if skip:
                await time_env.sleep(timedelta(seconds=skip))
    check(ledger)
    assert any(d.granted for _, _, d in ledger.decisions)


async def test_storm_across_continue_as_new_on_the_dev_server(dev_env: WorkflowEnvironment) -> None:
    """The real server hands updates that race a continue-as-new to the next run; none is lost or doubled."""
    policy = GovernorSettings(global_rate_per_minute=40, max_in_flight_per_namespace=30)
    requests = [
        GrantRequest(request_id=f"req-{i % 250}", runbook="restart", action="restart_deployment",
                     namespace=strategies.NAMESPACES[i % 3], target=f"web-{i % 250}")
        for i in range(160)
    ]
    ledger = Ledger(policy, ordered=False)
    # At most 40 updates in flight: past that the dev server refuses or drops updates around a
    # continue-as-new often enough (temporalio/temporal#6375) to stall a run for minutes.
    in_flight = asyncio.Semaphore(40)

    async def bounded(handle: Any, request: GrantRequest) -> GrantDecision:
        async with in_flight:
            return await ask(handle, request)

    async with running_governor(dev_env.client, policy, continue_as_new_after=20) as (_, handle):
        decisions = await asyncio.gather(*(bounded(handle, r) for r in requests))
        ledger.decisions += [(d.decided_at, r, d) for r, d in zip(requests, decisions, strict=True)]
        runs = [e async for e in dev_env.client.list_workflows(f'WorkflowId="{handle.id}"')]
    check(ledger)
    assert len(ledger.first_grants()) == 40, "the rate limit, exactly, across all runs"
    assert len(runs) > 5, "the storm spanned several runs"
