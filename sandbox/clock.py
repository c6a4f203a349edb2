"""The sandbox's notion of "now", which tests can move.

Wall-clock time plus an offset by default, so a sandbox left alone behaves
like a real cluster; `advance()` jumps it forward (the CronJob controller
then sees the scheduled time arrive) and `set(..., frozen=True)` pins it to
an exact instant so a test decides, tick by tick, what time the controller
sees. Creation timestamps, Job start/completion times and everything the
CronJob controller decides come from this clock, and so do Deployment
condition times (the progress deadline is measured on it); pod condition
times stay on the wall clock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

ISO = "%Y-%m-%dT%H:%M:%SZ"


def to_iso(when: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as the API server serialises metav1.Time."""
    return when.astimezone(UTC).strftime(ISO)


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, ISO).replace(tzinfo=UTC)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds(when: datetime | float) -> float:
    if isinstance(when, datetime):
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return float(when)


class Clock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0  # added to wall time while running
        self._frozen: float | None = None  # the instant, while frozen

    def time(self) -> float:
        """Seconds since the epoch, on the sandbox's clock."""
        with self._lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def iso(self) -> str:
        return to_iso(self.now())

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (never back: controllers assume time only grows)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward; use set() to jump anywhere")
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds
        return self.now()

    def set(self, when: datetime | float, frozen: bool = True) -> datetime:
        """Jump to `when` (a datetime, naive = UTC, or epoch seconds); frozen there unless
        `frozen=False`, in which case the clock runs on from it at wall-clock speed."""
        target = _seconds(when)
        with self._lock:
            if frozen:
                self._frozen = target
            else:
                self._frozen = None
                self._offset = target - time.time()
        return self.now()

    def freeze(self) -> datetime:
        return self.set(self.time(), frozen=True)

    def unfreeze(self) -> datetime:
        return self.set(self.time(), frozen=False)

    def reset(self) -> None:
        """Back to plain wall-clock time."""
        with self._lock:
            self._offset, self._frozen = 0.0, None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            offset, frozen = self._offset, self._frozen
        now = self.now()
        return {"now": to_iso(now), "timestamp": now.timestamp(), "frozen": frozen is not None,
                "offset_seconds": 0.0 if frozen is not None else offset}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"offset": self._offset, "frozen": self._frozen}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._offset = float(data.get("offset") or 0.0)
            frozen = data.get("frozen")
            self._frozen = None if frozen is None else float(frozen)
