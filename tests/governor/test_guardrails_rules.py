"""The Governor's rules one by one, on the pure logic: what a user would see in each case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from zerotouch import governor_status, guardrails
from zerotouch.governor_models import (
    BreakerCloseInput,
    GovernorBook,
    GovernorSettings,
    GrantRequest,
    ModeInput,
    OutcomeReport,
    PauseInput,
    ResumeInput,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def ask(index: int | str, **fields: Any) -> GrantRequest:
    base: dict[str, Any] = {"runbook": "restart-crashlooping", "alert_class": "KubePodCrashLooping",
                            "action": "restart_deployment", "namespace": "shop", "target": f"web-{index}"}
    return GrantRequest(request_id=f"req-{index}", **{**base, **fields})


def test_adr_budget_example_notifies_at_80_and_90_and_blocks_the_fourth_node() -> None:
    settings, book = GovernorSettings(monthly_budget=15, cost_per_node=4.5), GovernorBook()
    third = guardrails.decide(book, settings, ask(1, action="add_node", current_nodes=2, projected_nodes=3), NOW)
    assert third.granted
    assert [n.split(":")[0] for n in third.notifications] == ["budget at 80%", "budget at 90%"]
    again = guardrails.decide(book, settings, ask(2, action="add_node", current_nodes=2, projected_nodes=3), NOW)
    assert again.granted and again.notifications == [], "each threshold is announced once a month"
    fourth = guardrails.decide(book, settings, ask(3, action="add_node", current_nodes=3, projected_nodes=4), NOW)
    assert (fourth.granted, fourth.code) == (False, "budget")
    assert "€18.00" in fourth.reason and "blocked" in fourth.reason
    down = guardrails.decide(book, settings, ask(4, action="drain_node", current_nodes=4, projected_nodes=3), NOW)
    assert down.granted, "scale-downs are never blocked by the budget"
    next_month = guardrails.decide(book, settings, ask(5, action="add_node", current_nodes=2, projected_nodes=3),
                                   NOW + timedelta(days=31))
    assert len(next_month.notifications) == 2


@pytest.mark.parametrize(("current", "desired", "granted", "code"), [
    (2, 4, 4, "granted"), (2, 20, 6, "granted"), (8, 20, 10, "granted"), (10, 12, None, "replica_bounds"),
    (6, 1, 3, "granted"), (1, 0, None, "replica_bounds"), (4, 1, 2, "granted"), (3, 3, None, "scale_step"),
    (0, 5, 3, "granted"),
    (30, 5, None, "replica_bounds"),
])
def test_replicas_are_clamped_into_bounds_and_one_step(current: int, desired: int, granted: int | None,
                                                       code: str) -> None:
    decision = guardrails.decide(GovernorBook(), GovernorSettings(), ask(
        1, action="scale_deployment", current_replicas=current, desired_replicas=desired), NOW)
    assert (decision.granted_replicas, decision.code) == (granted, code), decision.reason


def test_pause_refuses_until_it_expires_and_resume_ends_it_early() -> None:
    settings, book = GovernorSettings(), GovernorBook()
    guardrails.pause(book, PauseInput(by="alice", reason="deploy freeze", duration_seconds=1800), NOW)
    refused = guardrails.decide(book, settings, ask(1), NOW + timedelta(minutes=29))
    assert (refused.code, refused.retry_after_seconds) == ("paused", 60.0)
    assert "alice" in refused.reason and "deploy freeze" in refused.reason
    assert guardrails.decide(book, settings, ask(1), NOW + timedelta(minutes=30)).granted
    guardrails.pause(book, PauseInput(by="alice", reason="again", duration_seconds=3600), NOW + timedelta(hours=1))
    assert guardrails.why_not_resume(book, NOW + timedelta(hours=1)) is None
    guardrails.resume(book, ResumeInput(by="bob"), NOW + timedelta(hours=1))
    assert guardrails.why_not_resume(book, NOW + timedelta(hours=1)) == "automation is not paused; nothing to resume"
    assert guardrails.decide(book, settings, ask(2), NOW + timedelta(hours=1)).granted
    assert [e.what for e in book.journal] == ["paused", "paused", "resumed"], "who paused and resumed is kept"


def test_a_human_approval_lifts_gates_but_never_hard_limits() -> None:
    settings, book = GovernorSettings(), GovernorBook()
    guardrails.set_mode(book, ModeInput(by="alice", mode="approve-all"), NOW)
    asked = guardrails.decide(book, settings, ask(1, risk_class="credential_rotation"), NOW)
    assert (asked.needs_approval, asked.code) == (True, "approve_all")
    guardrails.set_mode(book, ModeInput(by="alice", mode="auto"), NOW)
    asked = guardrails.decide(book, settings, ask(1, risk_class="credential_rotation"), NOW)
    assert (asked.needs_approval, asked.code) == (True, "excluded_class")
    approved = guardrails.decide(book, settings, ask(1, risk_class="credential_rotation", approved_by="bob"), NOW)
    assert approved.granted and approved.approved_by == "bob"
    again = guardrails.decide(book, settings, ask(2, target="web-1", approved_by="bob"), NOW + timedelta(minutes=1))
    assert (again.code, again.retry_after_seconds) == ("cooldown", 240.0)
    guardrails.set_mode(book, ModeInput(by="alice", mode="observe"), NOW)
    watched = guardrails.decide(book, settings, ask(3, approved_by="bob"), NOW)
    assert (watched.granted, watched.code, watched.needs_approval) == (False, "observe", False)


def test_breaker_opens_after_failed_verifications_and_needs_a_human_to_close() -> None:
    settings, book = GovernorSettings(breaker_failures=3, trust_prior_successes=50), GovernorBook()
    for minute in range(3):
        at = NOW + timedelta(minutes=10 * minute)
        grant = guardrails.decide(book, settings, ask(minute), at)
        assert grant.granted and grant.grant_id
        guardrails.release(book, settings, OutcomeReport(grant_id=grant.grant_id, verified=False), at)
    blocked = guardrails.decide(book, settings, ask(9), NOW + timedelta(hours=2))
    assert (blocked.code, blocked.needs_approval) == ("circuit_open", True)
    assert "3 failed verifications in 30m" in blocked.reason
    assert guardrails.why_not_close(book, "other") == "the breaker for runbook 'other' is not open"
    guardrails.close_breaker(book, BreakerCloseInput(by="carol", runbook="restart-crashlooping"), NOW)
    assert guardrails.decide(book, settings, ask(9), NOW + timedelta(hours=2)).granted


def test_failures_spread_beyond_the_window_do_not_open_the_breaker() -> None:
    settings, book = GovernorSettings(trust_prior_successes=50), GovernorBook()
    for step in range(5):
        at = NOW + timedelta(minutes=16 * step)
        grant = guardrails.decide(book, settings, ask(step), at)
        guardrails.release(book, settings, OutcomeReport(grant_id=str(grant.grant_id), verified=False), at)
    assert not book.breakers["restart-crashlooping"].open


def test_trust_drops_below_threshold_after_failures_and_recovers_with_successes() -> None:
    settings, book = GovernorSettings(breaker_failures=99), GovernorBook()
    assert guardrails.confidence(book, settings, "r", "A") == pytest.approx(8 / 9)
    levels = []
    for step in range(2):
        grant = guardrails.decide(book, settings, ask(step), NOW)
        guardrails.release(book, settings, OutcomeReport(grant_id=str(grant.grant_id), verified=False), NOW)
        levels.append(governor_status.status(book, settings, NOW).trust[0].level)
    assert levels == ["auto", "approval"]
    refused = guardrails.decide(book, settings, ask(5), NOW)
    assert (refused.code, refused.needs_approval, round(refused.confidence, 2)) == ("low_confidence", True, 0.73)
    other_alert = guardrails.decide(book, settings, ask(6, alert_class="KubeDeploymentReplicasMismatch"), NOW)
    assert other_alert.granted, "trust is kept per (runbook, alert class)"


def test_rate_limit_and_blast_radius_refuse_with_reasons() -> None:
    settings = GovernorSettings(global_rate_per_minute=2, max_in_flight_per_namespace=5)
    book = GovernorBook()
    assert all(guardrails.decide(book, settings, ask(i), NOW).granted for i in range(2))
    limited = guardrails.decide(book, settings, ask(3), NOW + timedelta(seconds=45))
    assert (limited.code, limited.retry_after_seconds) == ("rate_limit", 15.0)
    settings = GovernorSettings(max_in_flight_per_namespace=1)
    book = GovernorBook()
    first = guardrails.decide(book, settings, ask(1), NOW)
    assert guardrails.decide(book, settings, ask(2), NOW).code == "blast_radius"
    assert guardrails.decide(book, settings, ask(3, namespace="pay"), NOW).granted
    guardrails.release(book, settings, OutcomeReport(grant_id=str(first.grant_id), verified=True), NOW)
    assert guardrails.decide(book, settings, ask(2), NOW).granted


def test_a_retried_request_returns_the_same_grant_without_taking_another() -> None:
    settings, book = GovernorSettings(), GovernorBook()
    first = guardrails.decide(book, settings, ask(1), NOW)
    retried = guardrails.decide(book, settings, ask(1), NOW + timedelta(seconds=5))
    assert retried == first and book.next_grant == 2 and len(book.recent_grants) == 1
