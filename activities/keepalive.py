"""Heartbeats for short, blocking activities, so a dead worker is noticed in seconds.

An action (one PATCH, one eviction, one SQL statement) has nothing to report while it
waits on the API, yet the workflow needs to know quickly when the worker running it has
died: without a heartbeat Temporal retries only after the whole `start_to_close`. A
`keeps_alive` activity heartbeats from a helper thread for as long as its own thread runs,
when (and only when) the caller set a heartbeat timeout. A hung API call is still bounded by
`start_to_close`; what the heartbeat proves is only that the worker process is alive.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from temporalio import activity

log = logging.getLogger("zerotouch.activities")

P = ParamSpec("P")
R = TypeVar("R")

_MARK = "__zerotouch_keeps_alive__"

# Several beats per timeout, so one late beat on a busy machine does not fail an attempt.
BEATS_PER_TIMEOUT = 4
SHORTEST_INTERVAL_SECONDS = 0.2


def keeps_alive(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a sync activity (under ``@activity.defn``) to heartbeat while it runs."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with heartbeating():
            return fn(*args, **kwargs)

    setattr(run, _MARK, True)
    return run


def is_kept_alive(fn: Callable[..., object]) -> bool:
    """Whether ``fn`` (a function or bound method) was decorated with `keeps_alive`."""
    return bool(getattr(fn, _MARK, False))


@contextlib.contextmanager
def heartbeating() -> Iterator[None]:
    """Heartbeat from a helper thread until the block ends (no-op outside a heartbeat-timed activity)."""
    timeout = activity.info().heartbeat_timeout if activity.in_activity() else None
    if not timeout:
        yield
        return
    interval = max(SHORTEST_INTERVAL_SECONDS, timeout.total_seconds() / BEATS_PER_TIMEOUT)
    done = threading.Event()
    # The activity's context (its heartbeat function) lives in a context variable of this thread.
    context = contextvars.copy_context()

    def beat() -> None:
        while not done.wait(interval):
            try:
                activity.heartbeat()
            except Exception:
                # The worker is shutting down or the activity ended meanwhile; the
                # activity's own outcome is what matters, so stop beating quietly.
                log.debug("heartbeat not sent", exc_info=True)
                return

    name = f"heartbeat-{activity.info().activity_type}"
    helper = threading.Thread(target=context.run, args=(beat,), name=name, daemon=True)
    helper.start()
    try:
        yield
    finally:
        done.set()
        helper.join()
