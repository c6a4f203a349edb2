"""What an operator sees of the Governor (`zerotouch governor`, its status query): read-only, decides nothing."""

from __future__ import annotations

from datetime import datetime

from zerotouch.governor_models import (
    BreakerRow,
    BudgetRow,
    CooldownRow,
    GovernorBook,
    GovernorSettings,
    GovernorStatus,
    TrustRow,
)
from zerotouch.guardrails import RATE_WINDOW, confidence, in_flight, paused
from zerotouch.node_leases import live
from zerotouch.scaling import EPSILON


def status(book: GovernorBook, settings: GovernorSettings, now: datetime) -> GovernorStatus:
    """What an operator sees: mode, pause, limits in use, breakers, trust table, budget."""
    pause = paused(book, now)
    namespaces = sorted({g.namespace for g in book.in_flight.values()})
    rows = []
    for record in sorted(book.trust.values(), key=lambda r: (r.runbook, r.alert_class)):
        level = confidence(book, settings, record.runbook, record.alert_class)
        rows.append(TrustRow(
            runbook=record.runbook, alert_class=record.alert_class, successes=record.successes,
            failures=record.failures, confidence=round(level, 4),
            level="auto" if level >= settings.confidence_threshold - EPSILON else "approval",
        ))
    cost, budget = book.last_projected_cost, settings.monthly_budget
    return GovernorStatus(
        mode=book.mode,
        paused_until=pause.until if pause else None,
        paused_by=pause.by if pause else None,
        pause_reason=pause.reason if pause else None,
        cooldowns=[CooldownRow(key=k, until=at + settings.target_cooldown)
                   for k, at in sorted(book.cooldowns.items()) if at + settings.target_cooldown > now],
        rate_used=sum(1 for t in book.recent_grants if t > now - RATE_WINDOW),
        rate_limit=settings.global_rate_per_minute,
        in_flight={ns: n for ns in namespaces if (n := in_flight(book, settings, now, ns))},
        breakers=[BreakerRow(runbook=name, open=b.open, recent_failures=len(b.failures), opened_at=b.opened_at,
                             closed_by=b.closed_by) for name, b in sorted(book.breakers.items())],
        trust=rows,
        budget=BudgetRow(monthly=budget, projected=cost, notified=list(book.budget_notified),
                         percent=round(100 * cost / budget, 1) if cost is not None and budget else None),
        journal=book.journal[-20:],
        requests_handled=book.requests_handled,
        node_leases=sorted(live(book, now).values(), key=lambda lease: lease.node),
    )
