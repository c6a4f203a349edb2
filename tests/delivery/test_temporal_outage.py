"""Temporal is down while alerts arrive: the relay answers 503, Alertmanager retries, nothing is lost.

Alertmanager (v0.25, notify/notify.go `RetryStage`) retries a failed webhook with exponential
backoff (0.5 s, x 1.5, jittered) until the flush's context expires — group_interval, but at least
10 s (`notify.MinTimeout`). A flush that gave up is not written to the notification log, so the
next group_interval flush sends the group again. Both are measured below from its own metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from tests.delivery.alertmanager import Alertmanager, am_alert
from tests.delivery.conftest import TOKEN, Temporal, report
from tests.delivery.incidents import (
    ALERTMANAGER_GROUP_BY,
    GROUP_BY,
    assert_one_incident_per_alert,
    fired_signals,
    incident_id,
    wait_for_incidents,
)

ACKNOWLEDGED = 20
ALERTS = 120
# Below Alertmanager's 10 s notify context, so each flush makes several attempts, not one.
RELAY_TEMPORAL_TIMEOUT = 3.0


class _Count503(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("answering 503"):
            self.count += 1


@contextmanager
def counting_503s() -> Iterator[_Count503]:
    handler = _Count503()
    logger = logging.getLogger("zerotouch.relay")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def _until(probe: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        await asyncio.sleep(0.25)


async def test_alerts_sent_while_temporal_is_down_all_become_incidents_once(
    temporal: Temporal, tmp_path: Path, token_file: Path
) -> None:
    config = RelayConfig(host="127.0.0.1", port=0, token=TOKEN, group_by=GROUP_BY,
                         temporal_timeout_seconds=RELAY_TEMPORAL_TIMEOUT)
    relay = RelayServer(config, temporal.client)
    alertmanager: Alertmanager | None = None
    with counting_503s() as relay_503s:
        await relay.start()
        try:
            alertmanager = await Alertmanager.start(tmp_path, relay_url=relay.url, token_file=token_file,
                                                    group_by=ALERTMANAGER_GROUP_BY, group_wait="0s",
                                                    group_interval="1s")
            # Incidents Temporal acknowledged before the crash must survive it (SQLite WAL file).
            acknowledged = [am_alert("BeforeOutage", namespace="outage", deployment=f"svc-{i:03d}")
                            for i in range(ACKNOWLEDGED)]
            await alertmanager.post(acknowledged)
            runs = await wait_for_incidents(temporal.client, {incident_id(a) for a in acknowledged}, timeout=60)
            assert len(runs) == ACKNOWLEDGED, runs
            before = await alertmanager.webhook_counters()
            await temporal.server.kill()  # SIGKILL: no graceful shutdown of the frontend
            alerts = [am_alert("TemporalOutage", namespace="outage", deployment=f"svc-{i:03d}")
                      for i in range(ALERTS)]
            await alertmanager.post(alerts)
            expected = {incident_id(alert) for alert in acknowledged + alerts}
            assert len(expected) == ACKNOWLEDGED + ALERTS

            # Stay down until every group has had a whole flush fail (retries exhausted within
            # its context), so what follows relies on the resend at the next group_interval.
            async def every_flush_failed_once() -> bool:
                assert alertmanager is not None
                return (await alertmanager.webhook_counters() - before).notifications_failed >= ALERTS

            await _until(every_flush_failed_once, "not every Alertmanager group failed a flush", 120)
            down = await alertmanager.webhook_counters() - before
            seen_503_while_down = relay_503s.count

            restarted_at = datetime.now(UTC)
            started = asyncio.get_running_loop().time()
            await temporal.server.start()  # same SQLite file, same port; the relay keeps its client
            back = asyncio.get_running_loop().time()
            runs = await wait_for_incidents(temporal.client, expected, timeout=180)
            last_incident = asyncio.get_running_loop().time()
            after = await alertmanager.webhook_counters() - before
            signals = await fired_signals(temporal.client, set(runs))
        finally:
            if alertmanager is not None:
                await alertmanager.stop()
            await relay.stop()

    assert_one_incident_per_alert(runs, expected, signals,
                                  {incident_id(alert): alert["labels"] for alert in acknowledged + alerts})
    # The outage was real: the relay refused with 503 and Alertmanager retried within and across flushes.
    assert seen_503_while_down >= ALERTS, f"only {seen_503_while_down} 503s for {ALERTS} groups"
    assert down.requests_failed >= ALERTS and down.requests > down.notifications, down

    report("temporal_outage", {
        "alerts_before_outage": ACKNOWLEDGED,
        "alerts_during_outage": ALERTS,
        "incidents": len(runs),
        "executions": sum(runs.values()),
        "relay_503s": relay_503s.count,
        "am_requests_while_down": down.requests,
        "am_requests_failed_while_down": down.requests_failed,
        "am_flushes_failed_while_down": down.notifications_failed,
        "am_requests_total": after.requests,
        "am_requests_failed_total": after.requests_failed,
        "am_flushes_total": after.notifications,
        # A delivery the relay gave up on (503) may still land once Temporal is back: absorbed as a repeat.
        "incidents_signalled_more_than_once": sum(1 for fired in signals.values() if len(fired) > 1),
        "most_signals_per_incident": max(len(fired) for fired in signals.values()),
        # Received by the relay while Temporal was down, yet delivered: the SDK's own retry outlives
        # the relay's timeout. Such a call lands after its 503, next to Alertmanager's redelivery.
        "signals_received_while_down": sum(1 for fired in signals.values() for event in fired
                                           if event.received_at and event.received_at < restarted_at
                                           and event.labels["alertname"] == "TemporalOutage"),
        "temporal_restart_seconds": round(back - started, 2),
        "temporal_back_to_last_incident_seconds": round(last_incident - back, 2),
    })
