"""The relay's memory of what each incident was just told (starters/relay/repeats.py), on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from starters.relay.repeats import RepeatFilter
from zerotouch.alerts import AlertEvent

STARTED = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def event(status: str = "firing", *, summary: str = "down", starts_at: datetime = STARTED) -> AlertEvent:
    return AlertEvent(fingerprint="f1", status=status, labels={"alertname": "Down"},  # type: ignore[arg-type]
                      annotations={"summary": summary}, starts_at=starts_at, received_at=datetime.now(UTC))


class Temporal:
    """Counts the calls the filter lets through; ``gate`` holds them until set."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def send(self) -> bool:
        self.calls += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return True


async def test_a_repeat_within_the_window_is_answered_without_a_call() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60)
    assert await repeats.tell("inc", event(), temporal.send)
    assert await repeats.tell("inc", event(), temporal.send)  # received_at differs: still the same news
    assert (temporal.calls, repeats.absorbed) == (1, 1)


@pytest.mark.parametrize("changed", [event("resolved"), event(summary="worse"),
                                     event(starts_at=STARTED.replace(hour=8))])
async def test_news_goes_through(changed: AlertEvent) -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60)
    await repeats.tell("inc", event(), temporal.send)
    await repeats.tell("inc", changed, temporal.send)
    await repeats.tell("other-incident", event(), temporal.send)
    assert (temporal.calls, repeats.absorbed) == (3, 0)


async def test_a_flap_back_to_firing_goes_through() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60)
    for status in ("firing", "resolved", "firing"):
        await repeats.tell("inc", event(status), temporal.send)
    assert temporal.calls == 3  # compared with the last state told, not with any state seen


async def test_no_window_tells_everything() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=0)
    for _ in range(3):
        await repeats.tell("inc", event(), temporal.send)
    assert (temporal.calls, repeats.absorbed, len(repeats)) == (3, 0, 0)


async def test_after_the_window_a_repeat_goes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=30)
    now = [1000.0]
    monkeypatch.setattr("starters.relay.repeats.time.monotonic", lambda: now[0])
    await repeats.tell("inc", event(), temporal.send)
    now[0] += 29
    await repeats.tell("inc", event(), temporal.send)
    now[0] += 2  # 31 s after Temporal acknowledged the first: the incident may have closed since
    await repeats.tell("inc", event(), temporal.send)
    assert (temporal.calls, repeats.absorbed) == (2, 1)


async def test_identical_deliveries_at_once_make_one_call_and_share_its_answer() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60)
    temporal.gate.clear()
    waiting = [asyncio.create_task(repeats.tell("inc", event(), temporal.send)) for _ in range(4)]
    await asyncio.sleep(0)
    temporal.gate.set()
    assert await asyncio.gather(*waiting) == [True] * 4
    assert (temporal.calls, repeats.absorbed) == (1, 3)


async def test_a_failed_call_fails_its_waiters_and_is_not_remembered() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60)
    temporal.gate.clear()
    temporal.fail = RuntimeError("Temporal unavailable")
    first = asyncio.create_task(repeats.tell("inc", event(), temporal.send))
    await asyncio.sleep(0)
    second = asyncio.create_task(repeats.tell("inc", event(), temporal.send))
    await asyncio.sleep(0)
    temporal.gate.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)  # both answered 503: both retried
    temporal.fail = None
    assert await repeats.tell("inc", event(), temporal.send)
    assert temporal.calls == 2


async def test_two_states_on_their_way_at_once_are_forgotten() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60)
    temporal.gate.clear()
    racing = [asyncio.create_task(repeats.tell("inc", event(status), temporal.send))
              for status in ("firing", "resolved")]
    await asyncio.sleep(0)
    temporal.gate.set()
    await asyncio.gather(*racing)
    # Which one Temporal took last is unknown: neither is remembered, the next delivery goes through.
    await repeats.tell("inc", event("firing"), temporal.send)
    await repeats.tell("inc", event("resolved"), temporal.send)
    assert (temporal.calls, repeats.absorbed) == (4, 0)


async def test_memory_is_bounded() -> None:
    temporal, repeats = Temporal(), RepeatFilter(window_seconds=60, max_alerts=2)
    for incident in ("a", "b", "c"):
        await repeats.tell(incident, event(), temporal.send)
    assert len(repeats) == 2
    await repeats.tell("a", event(), temporal.send)  # forgotten first: told again
    assert temporal.calls == 4
