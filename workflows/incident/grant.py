"""Asking the cluster's Governor before acting, and living with its answer.

Granted: act. Needs approval: ask a human, then ask again as approved. Cooldown,
rate limit, blast radius or the kill switch: wait as long as it says, then ask again
(while paused the incident escalates instead of acting). Anything else: give up,
the incident escalates and freezes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.durations import format_duration
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.policy import Policy

from workflows.incident import calls
from workflows.incident.state import IncidentBook

# Refusals that pass by themselves: wait and ask again.
_WAIT_CODES = {"cooldown", "rate_limit", "blast_radius", "paused"}
_MAX_ASKS = 200  # bounded: a refusal that never lifts ends in escalation, not an endless loop
_WHAT = {"cooldown": "target cooldown", "rate_limit": "global rate limit", "blast_radius": "blast radius",
         "paused": "kill switch"}


class GrantRefused(Exception):
    """The Governor said no for good (or a human stepped in); the message says why."""

    def __init__(self, reason: str, *, human: bool = False) -> None:
        super().__init__(reason)
        self.human = human


async def obtain_grant(
    book: IncidentBook,
    policy: Policy,
    cluster: str,
    request: GrantRequest,
    *,
    ask_human: Callable[[str], Awaitable[str | None]],
    escalate: Callable[[str], None],
) -> GrantDecision:
    """Ask until granted; raise GrantRefused when it cannot be."""
    settings = governor_settings(policy)
    base_id = request.request_id
    for ask in range(1, _MAX_ASKS + 1):
        decision = await calls.request_grant(request, settings, cluster)
        for notice in decision.notifications:
            book.note("budget", notice)
        if decision.granted:
            book.note("grant", f"granted by the Governor ({decision.reason})")
            return decision
        if decision.needs_approval and request.approved_by is None:
            approver = await ask_human(decision.reason)
            if approver is None:
                raise GrantRefused("a human stopped the incident while approval was pending", human=True)
            request = request.model_copy(update={"approved_by": approver, "request_id": f"{base_id}/approved"})
            continue
        if decision.code in _WAIT_CODES:
            wait = timedelta(seconds=max(1.0, decision.retry_after_seconds or 30.0))
            book.note("grant", f"{_WHAT[decision.code]}: {decision.reason}; asking again in {format_duration(wait)}")
            if decision.code == "paused":
                escalate(decision.reason)
                book.set_state("escalated")
            if not await _wait(book, wait):
                raise GrantRefused("a human stepped in while waiting for the Governor", human=True)
            request = request.model_copy(update={"request_id": f"{base_id}/ask-{ask}"})
            continue
        raise GrantRefused(f"the Governor refused ({decision.code}): {decision.reason}")
    raise GrantRefused(f"the Governor refused {_MAX_ASKS} times in a row")


async def _wait(book: IncidentBook, period: timedelta) -> bool:
    """Sleep durably unless a human aborts or takes over; True if automation may go on."""
    with contextlib.suppress(TimeoutError):
        await workflow.wait_condition(lambda: book.aborted_by is not None or book.owner is not None, timeout=period)
    return book.aborted_by is None and book.owner is None
