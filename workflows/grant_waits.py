"""Asking the Governor until its answer settles: the refusals that pass by themselves are waited out.

A cooldown, the global rate, the blast radius and a pause end on their own; the recoveries (node,
database, namespace) ask again after the Governor's `retry_after_seconds` (5 s when it gives none),
a bounded number of times, and stop waiting as soon as a human aborts. Every other answer (granted,
needs approval, refused for good) comes back at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import GrantDecision

WAIT_CODES = frozenset({"cooldown", "rate_limit", "blast_radius", "paused"})
DEFAULT_WAIT = timedelta(seconds=5)


async def until_settled(
    ask: Callable[[int], Awaitable[GrantDecision]], *, max_asks: int, aborted: Callable[[], bool],
    waiting: Callable[[GrantDecision], None],
) -> GrantDecision:
    """``ask(n)`` for n = 0, 1, ... while the answer is a wait; ``waiting`` hears the first wait only.

    Returns the last answer: settled, or still a wait when a human aborted or the asks ran out.
    """
    decision: GrantDecision | None = None
    for attempt in range(max_asks):
        decision = await ask(attempt)
        if decision.code not in WAIT_CODES:
            return decision
        if attempt == 0:
            waiting(decision)
        wait = timedelta(seconds=decision.retry_after_seconds) if decision.retry_after_seconds else DEFAULT_WAIT
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(aborted, timeout=wait)
        if aborted():
            return decision
    assert decision is not None, "max_asks is at least 1"
    return decision
