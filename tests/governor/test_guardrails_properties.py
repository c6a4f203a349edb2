"""Property tests of the pure decision logic: thousands of random request streams, every invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.governor import strategies
from tests.governor.invariants import Ledger, check
from zerotouch import guardrails
from zerotouch.governor_models import GovernorBook, GovernorSettings, ModeInput, OutcomeReport, PauseInput

START = datetime(2025, 3, 31, 23, 0, tzinfo=UTC)  # a month boundary inside the run resets budget notices


@st.composite
def operations(draw: Any) -> list[tuple[str, float, Any]]:
    ops: list[tuple[str, float, Any]] = []
    made: list[Any] = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["request"] * 6 + ["outcome"] * 2 + ["pause", "mode"]))
        step = draw(st.sampled_from([0.0, 0.0, 1.0, 20.0, 59.0, 60.0, 301.0]))
        if kind == "request":
            request = draw(strategies.stream(1, made))[0]
            made.append(request)
            ops.append((kind, step, request))
        elif kind == "outcome":
            ops.append((kind, step, (draw(st.integers(0, 50)), draw(st.booleans()), draw(st.booleans()))))
        elif kind == "pause":
            ops.append((kind, step, draw(st.integers(1, 600))))
        else:
            ops.append((kind, step, draw(st.sampled_from(["auto", "auto", "approve-all", "observe"]))))
    return ops


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=strategies.settings(), ops=operations())
def test_any_request_stream_keeps_every_invariant(policy: GovernorSettings, ops: list[tuple[str, float, Any]]) -> None:
    book, ledger, now = GovernorBook(), Ledger(policy), START
    for kind, step, payload in ops:
        now += timedelta(seconds=step)
        if kind == "request":
            decision = guardrails.decide(book, policy, payload, now)
            ledger.decisions.append((now, payload, decision))
            if decision.granted and decision.grant_id not in {d.grant_id for _, _, d in ledger.decisions[:-1]}:
                _check_human_gates(book, payload, now, decision, ledger)
        elif kind == "outcome":
            grants = [d.grant_id for _, _, d in ledger.decisions if d.grant_id]
            pick, verified, executed = payload
            if grants:
                grant_id = grants[pick % len(grants)]
                guardrails.release(book, policy, OutcomeReport(grant_id=grant_id, verified=verified,
                                                               executed=executed), now)
                ledger.release(grant_id)
        elif kind == "pause":
            guardrails.pause(book, PauseInput(by="ops", reason="drill", duration_seconds=payload), now)
        else:
            guardrails.set_mode(book, ModeInput(by="ops", mode=payload), now)
        for namespace in strategies.NAMESPACES:
            assert guardrails.in_flight(book, policy, now, namespace) <= policy.max_in_flight_per_namespace
    check(ledger)
    assert book.next_grant - 1 == len(ledger.first_grants()), "a grant was recorded twice"


def _check_human_gates(book: GovernorBook, request: Any, now: datetime, decision: Any, ledger: Ledger) -> None:
    """A fresh grant never happens while paused or in observe mode without a person behind it."""
    assert book.mode != "observe"
    if request.approved_by is None:
        assert guardrails.paused(book, now) is None
        assert book.mode == "auto"
        assert decision.confidence >= ledger.settings.confidence_threshold - 1e-9
