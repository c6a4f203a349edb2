"""Waiting, inside an activity, until a condition has held for a while, or a deadline passes.

Rollout health and PromQL verification both need "true for N seconds in a row,
within T seconds", heartbeating as they poll and ending at once when cancelled.
The wait is async: between polls it sleeps on the event loop, so a worker running
hundreds of waits holds no thread of its activity executor for any of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity

Result = TypeVar("Result", bound=BaseModel)


async def hold_until(
    probe: Callable[[], Result],
    *,
    flag: str,
    hold_seconds: float,
    timeout_seconds: float,
    poll_seconds: float,
    failure: str,
) -> Result:
    """Poll the blocking ``probe`` until its boolean field ``flag`` stays true for ``hold_seconds``.

    At the timeout the last result comes back with ``flag`` false and ``failure`` in its
    detail; the timeout is an answer, not an error. A cancelled activity ends at once:
    Temporal cancels an async activity's task, which interrupts the sleep or the probe.
    """
    started = time.monotonic()
    holding_since: float | None = None
    while True:
        # The probe is one client call (bounded by its own request timeout) on the loop's default
        # executor, not on the worker's activity executor: a probe holds a thread for milliseconds,
        # so min(32, cpus + 4) threads serve every concurrent wait; a slow API cannot take the
        # threads that actions (restart, scale) need, and on one the polls space out instead of
        # piling up. A cancelled wait stops waiting for it at once; the call itself finishes within
        # its timeout and its answer is dropped.
        last = await asyncio.to_thread(probe)
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
        await asyncio.sleep(poll_seconds)
