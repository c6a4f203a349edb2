"""Waiting, inside an activity, until a condition has held for a while, or a deadline passes.

Rollout health and PromQL verification both need "true for N seconds in a row,
within T seconds", heartbeating as they poll and ending at once when cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import CancelledError

Result = TypeVar("Result", bound=BaseModel)


def hold_until(
    probe: Callable[[], Result],
    *,
    flag: str,
    hold_seconds: float,
    timeout_seconds: float,
    poll_seconds: float,
    failure: str,
    what: str,
) -> Result:
    """Poll ``probe`` until its boolean field ``flag`` stays true for ``hold_seconds``.

    At the timeout the last result comes back with ``flag`` false and ``failure`` in its
    detail; the timeout is an answer, not an error.
    """
    started = time.monotonic()
    holding_since: float | None = None
    while True:
        last = probe()
        now = time.monotonic()
        good = bool(getattr(last, flag))
        detail = str(getattr(last, "detail", ""))
        if not good:
            holding_since = None
        elif holding_since is None:
            holding_since = now
        held = now - holding_since if holding_since is not None else 0.0
        activity.heartbeat({flag: good, "held_seconds": round(held, 1), "detail": detail})
        if holding_since is not None and held >= hold_seconds:
            return last.model_copy(update={"detail": f"{detail}; held for {held:.1f}s"})
        if now - started >= timeout_seconds:
            return last.model_copy(update={
                flag: False,
                "detail": f"{failure} for {hold_seconds:g}s within {timeout_seconds:g}s: {detail}",
            })
        # Sleeping through the cancellation event lets a cancelled wait end at once.
        activity.wait_for_cancelled_sync(timeout=poll_seconds)
        if activity.is_cancelled():
            raise CancelledError(f"{what} cancelled")
