"""GovernorWorkflow on the time-skipping server: kill switch, validators, breaker, trust, continue-as-new."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.governor.support import ask, replay_and_record_governor, running_governor
from zerotouch import governor_client as governor
from zerotouch.governor_client import GovernorError
from zerotouch.governor_models import SIGNAL_REPORT_OUTCOME, GovernorSettings, GrantRequest, OutcomeReport


def request(index: int | str, **fields: Any) -> GrantRequest:
    base: dict[str, Any] = {"runbook": "restart-crashlooping", "alert_class": "KubePodCrashLooping",
                            "action": "restart_deployment", "namespace": "shop", "target": f"web-{index}"}
    return GrantRequest(request_id=f"req-{index}", **{**base, **fields})


async def fail_once(handle: WorkflowHandle[Any, Any], index: int, **fields: Any) -> None:
    grant = await ask(handle, request(index, **fields))
    assert grant.granted and grant.grant_id, grant.reason
    await handle.signal(SIGNAL_REPORT_OUTCOME, OutcomeReport(grant_id=grant.grant_id, verified=False))


async def test_pause_refuses_until_it_expires_and_resume_works_early(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    async with running_governor(client, GovernorSettings()) as (cluster, handle):
        ack = await governor.pause(client, cluster, "alice", "database migration", timedelta(minutes=30))
        assert "paused by alice" in ack.message
        refused = await ask(handle, request(1))
        assert (refused.granted, refused.code) == (False, "paused") and "database migration" in refused.reason
        status = await governor.governor_status(client, cluster)
        assert status.paused_by == "alice" and status.pause_reason == "database migration"
        await time_env.sleep(timedelta(minutes=31))
        assert (await ask(handle, request(2))).granted
        assert (await governor.governor_status(client, cluster)).paused_until is None
        assert any(e.what == "pause expired" for e in (await governor.governor_status(client, cluster)).journal)

        await governor.pause(client, cluster, "alice", "freeze", timedelta(hours=2))
        assert (await ask(handle, request(3))).code == "paused"
        assert "resumed by bob" in (await governor.resume(client, cluster, "bob")).message
        assert (await ask(handle, request(3))).granted
    await replay_and_record_governor(client, handle.id, None, "governor-pause-expire-resume")


async def test_validators_reject_bad_steering_with_clear_messages(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    async with running_governor(client, GovernorSettings()) as (cluster, _):
        with pytest.raises(GovernorError, match="not paused; nothing to resume"):
            await governor.resume(client, cluster, "bob")
        with pytest.raises(GovernorError, match="must name a person"):
            await governor.set_mode(client, cluster, "observe", "   ")
        with pytest.raises(GovernorError, match="breaker for runbook 'nope' is not open"):
            await governor.close_breaker(client, cluster, "nope", "carol")
        with pytest.raises(ValueError, match="duration_seconds"):
            await governor.pause(client, cluster, "alice", "too long", timedelta(days=3))
    with pytest.raises(GovernorError, match="no Governor 'governor-missing' is running"):
        await governor.resume(client, "missing", "bob")


async def test_only_approvers_loosen_guardrails_but_anyone_may_tighten_them(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    settings = GovernorSettings(approvers=["alice"], breaker_failures=3, trust_prior_successes=50)
    async with running_governor(client, settings) as (cluster, handle):
        # Anyone on call may stop automation ...
        paused = await governor.pause(client, cluster, "mallory", "odd", timedelta(hours=1))
        assert "paused by mallory" in paused.message
        await governor.set_mode(client, cluster, "observe", "mallory")
        # ... but only an approver may let it act again.
        with pytest.raises(GovernorError, match="'mallory' is not an approver in the policy and may not resume"):
            await governor.resume(client, cluster, "mallory")
        with pytest.raises(GovernorError, match="may not switch to auto mode"):
            await governor.set_mode(client, cluster, "auto", "mallory")
        status = await governor.governor_status(client, cluster)
        assert status.paused_by == "mallory" and status.mode == "observe", "a refused update changes nothing"
        await governor.resume(client, cluster, "alice")
        await governor.set_mode(client, cluster, "auto", "alice")
        for index in range(1, 4):  # three failed verifications open the runbook's breaker
            await fail_once(handle, index)
        with pytest.raises(GovernorError, match="may not close a circuit breaker"):
            await governor.close_breaker(client, cluster, "restart-crashlooping", "mallory")
        await governor.close_breaker(client, cluster, "restart-crashlooping", "alice")


async def test_observe_and_approve_all_modes(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    async with running_governor(client, GovernorSettings()) as (cluster, handle):
        await governor.set_mode(client, cluster, "observe", "alice", "trial week")
        assert (await ask(handle, request(1))).code == "observe"
        await governor.set_mode(client, cluster, "approve-all", "alice")
        asked = await ask(handle, request(1))
        assert (asked.code, asked.needs_approval) == ("approve_all", True)
        approved = await ask(handle, request(1, approved_by="bob"))
        assert approved.granted and approved.approved_by == "bob"
        journal = (await governor.governor_status(client, cluster)).journal
        assert [(e.by, e.what) for e in journal] == [("alice", "mode"), ("alice", "mode"), ("bob", "approved action")]


async def test_breaker_opens_after_failures_until_a_human_closes_it(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    settings = GovernorSettings(breaker_failures=3, trust_prior_successes=50)
    async with running_governor(client, settings) as (cluster, handle):
        for index in range(3):
            await fail_once(handle, index)
        blocked = await ask(handle, request(10))
        assert (blocked.code, blocked.needs_approval) == ("circuit_open", True), blocked.reason
        other = await ask(handle, request(11, runbook="scale-up-web"))
        assert other.granted, "only the failing runbook is stopped"
        status = await governor.governor_status(client, cluster)
        assert [(b.runbook, b.open) for b in status.breakers] == [("restart-crashlooping", True)]
        assert "closed by carol" in (await governor.close_breaker(client, cluster, "restart-crashlooping",
                                                                  "carol")).message
        assert (await ask(handle, request(10))).granted


async def test_a_failing_runbook_loses_trust_and_the_trust_table_shows_it(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    async with running_governor(client, GovernorSettings(breaker_failures=99)) as (cluster, handle):
        good = await ask(handle, request("ok", runbook="scale-up-web", alert_class="HighLatency"))
        await handle.signal(SIGNAL_REPORT_OUTCOME, OutcomeReport(grant_id=str(good.grant_id), verified=True))
        for index in range(2):
            await fail_once(handle, index)
        refused = await ask(handle, request(5))
        assert (refused.code, refused.needs_approval) == ("low_confidence", True)
        rows = await governor.trust_table(client, cluster)
        assert [(r.runbook, r.successes, r.failures, r.level) for r in rows] == [
            ("restart-crashlooping", 0, 2, "approval"), ("scale-up-web", 1, 0, "auto")]
        text = governor.render_trust(rows)
        assert "restart-crashlooping" in text and "0.73" in text and "approval" in text
        assert "mode       auto" in governor.render_status(await governor.governor_status(client, cluster))


async def test_continue_as_new_keeps_cooldowns_trust_and_idempotency(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    async with running_governor(client, GovernorSettings(), continue_as_new_after=3) as (cluster, handle):
        first = await ask(handle, request(1))
        await fail_once(handle, 2)
        for index in range(3, 6):
            assert (await ask(handle, request(index))).granted
        description = await handle.describe()
        assert description.run_id != handle.result_run_id, "the Governor continued as new"
        assert await ask(handle, request(1)) == first, "a retried request finds its grant in the new run"
        assert (await ask(handle, request(99, target="web-1"))).code == "cooldown"
        rows = await governor.trust_table(client, cluster)
        assert [(r.runbook, r.failures) for r in rows] == [("restart-crashlooping", 1)]
        assert (await governor.governor_status(client, cluster)).requests_handled == 6
        await replay_and_record_governor(client, handle.id, handle.result_run_id, "governor-continued-as-new")
