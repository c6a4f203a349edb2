"""Exact repeats of an alert its incident was told moments ago are answered, not told again.

Alertmanager sends the same alert more than once: every replica of an HA cluster notifies
(their gossip only suppresses what it has already seen), a route may list the relay under two
receivers, and a retried group repeats what went through. To an incident such a repeat is a
count and nothing else (`workflows.incident.state`: a repeat of a firing alert changes no state),
yet each one costs a signal: a write in Temporal's history and a workflow task on a worker.
In a storm those were most of the work (BENCHMARKS.md, scenario 3).

So an alert identical to the last one told to the same incident (same status, start, annotations
and source) within ``window_seconds`` of Temporal acknowledging it is answered with that
acknowledgement, and counted in ``zerotouch_relay_alerts_absorbed``. Nothing is lost on a crash:
the acknowledged delivery is already in the incident's history, and a repeat carries nothing more.
An identical delivery that arrives while the first is still on its way waits for that call instead
of making its own. Anything else goes through: a change of status (a flap), a new start (the alert
fired again), different annotations, or a repeat after the window (the incident may have closed
since, and then the alert must open a new one).

While two different states of one alert are on their way at once, the order Temporal took them in
is unknown, so the alert is forgotten rather than remembered wrongly: the next delivery goes through.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from zerotouch.alerts import AlertEvent

# HA Alertmanager replicas notify within a peer's position wait of each other (15 s apart per
# replica by default, --cluster.peer-timeout); real repeats come at repeat_interval (hours), so
# they are never absorbed.
DEFAULT_WINDOW_SECONDS = 30.0
# Alerts remembered at most (about 300 bytes each); the oldest are forgotten first.
DEFAULT_MAX_ALERTS = 100_000

AlertState = tuple[str, datetime, tuple[tuple[str, str], ...], str]


def _state(event: AlertEvent) -> AlertState:
    """What makes two deliveries of one alert the same news (``received_at`` does not)."""
    return event.status, event.starts_at, tuple(sorted(event.annotations.items())), event.external_url


@dataclass
class _Told:
    state: AlertState
    at: float = 0.0  # monotonic time Temporal acknowledged it; 0 while in flight
    told: bool = False
    in_flight: asyncio.Future[bool] | None = None
    sends: int = 0  # calls started for this alert: a second one in flight makes the order unknown
    waiters: int = field(default=0, repr=False)


class RepeatFilter:
    """The last state told of each alert, per incident; ``window_seconds=0`` tells every delivery."""

    def __init__(self, *, window_seconds: float = DEFAULT_WINDOW_SECONDS, max_alerts: int = DEFAULT_MAX_ALERTS,
                 on_absorbed: Callable[[], None] | None = None) -> None:
        self._window = window_seconds
        self._max_alerts = max_alerts
        self._alerts: OrderedDict[tuple[str, str], _Told] = OrderedDict()
        self._on_absorbed = on_absorbed
        self.absorbed = 0

    async def tell(self, incident_id: str, event: AlertEvent, send: Callable[[], Awaitable[bool]]) -> bool:
        """``send()`` (whether the incident exists afterwards), unless ``event`` repeats what it was just told."""
        if self._window <= 0:
            return await send()
        key, state = (incident_id, event.fingerprint), _state(event)
        known = self._alerts.get(key)
        if known is not None and known.state == state:
            if known.in_flight is not None:
                known.waiters += 1
                told = await asyncio.shield(known.in_flight)  # its failure is ours: Alertmanager retries both
                self._absorb()
                return told
            if time.monotonic() - known.at <= self._window:
                self._alerts.move_to_end(key)
                self._absorb()
                return known.told
        return await self._send(key, state, known, send)

    async def _send(self, key: tuple[str, str], state: AlertState, known: _Told | None,
                    send: Callable[[], Awaitable[bool]]) -> bool:
        mine = _Told(state=state, in_flight=asyncio.get_running_loop().create_future())
        mine.sends = (known.sends if known is not None and known.in_flight is not None else 0) + 1
        if known is not None and known.in_flight is not None:
            known.sends += 1  # two states on their way: neither may be remembered
        self._alerts[key] = mine
        self._alerts.move_to_end(key)
        self._forget_oldest()
        future = mine.in_flight
        assert future is not None
        try:
            told = await send()
        except BaseException as error:
            if self._alerts.get(key) is mine:
                del self._alerts[key]
            if not future.done():
                future.set_exception(error)
                if not mine.waiters:
                    future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        future.set_result(told)
        mine.in_flight = None
        if self._alerts.get(key) is mine and mine.sends == 1:
            mine.at, mine.told = time.monotonic(), told
        elif self._alerts.get(key) is mine:
            del self._alerts[key]
        return told

    def _absorb(self) -> None:
        self.absorbed += 1
        if self._on_absorbed is not None:
            self._on_absorbed()

    def _forget_oldest(self) -> None:
        while len(self._alerts) > self._max_alerts:
            self._alerts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._alerts)
