"""The relay process is SIGKILLed during a burst and restarted on its port: Alertmanager fills every gap.

The relay answers 200 only once Temporal has every alert of a payload, so a kill can lose
nothing Alertmanager believes delivered: payloads in flight or sent while it is down are
retried (connection refused and reset are retryable for the webhook notifier), and a
payload whose alerts were half signalled before the kill is absorbed on redelivery by
signal-with-start with USE_EXISTING.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.delivery.alertmanager import Alertmanager, am_alert
from tests.delivery.conftest import Temporal, report, start_relay
from tests.delivery.incidents import (
    assert_one_incident_per_alert,
    executions,
    fired_signals,
    incident_id,
    wait_for_incidents,
)
from tests.support.processes import ChildProcess
from zerotouch.ports import free_port

ALERTNAMES = 10
DEPLOYMENTS = 20
WAVES = 20
KILL_AFTER_WAVE = 8
WAVE_SPACING = 0.2
DOWN_SECONDS = 3.0


async def test_relay_killed_mid_burst_loses_and_duplicates_no_incident(
    temporal: Temporal, tmp_path: Path, token_file: Path
) -> None:
    port = free_port()
    alerts = [am_alert(f"RelayCrash{name:02d}", namespace="burst", deployment=f"svc-{deployment:02d}")
              for deployment in range(DEPLOYMENTS) for name in range(ALERTNAMES)]
    expected = {incident_id(alert) for alert in alerts}
    assert len(expected) == len(alerts)
    per_wave = len(alerts) // WAVES
    relay: ChildProcess | None = None
    alertmanager: Alertmanager | None = None
    try:
        relay = await start_relay(temporal, port, token_file, tmp_path / "relay.log")
        # Grouped coarser than the relay's incidents (by alertname only), so one webhook carries
        # alerts of several incidents and a kill can land between their signal-with-starts.
        alertmanager = await Alertmanager.start(tmp_path, relay_url=f"http://127.0.0.1:{port}",
                                                token_file=token_file, group_by=["alertname"],
                                                group_wait="0s", group_interval="1s")
        before = await alertmanager.webhook_counters()
        for wave in range(WAVES):
            await alertmanager.post(alerts[wave * per_wave:(wave + 1) * per_wave])
            if wave + 1 == KILL_AFTER_WAVE:
                # Kill once the relay has demonstrably been delivering this burst.
                await wait_for_incidents(temporal.client, {incident_id(alerts[0])}, timeout=60)
                relay.check_alive()
                await relay.kill()
                killed_at = asyncio.get_running_loop().time()
                incidents_at_kill = len(await executions(temporal.client))
            await asyncio.sleep(WAVE_SPACING)
        await asyncio.sleep(max(0.0, DOWN_SECONDS - (asyncio.get_running_loop().time() - killed_at)))
        down = await alertmanager.webhook_counters() - before
        relay = await start_relay(temporal, port, token_file, tmp_path / "relay.log")
        back = asyncio.get_running_loop().time()
        runs = await wait_for_incidents(temporal.client, expected, timeout=180)
        last_incident = asyncio.get_running_loop().time()
        after = await alertmanager.webhook_counters() - before
        relay.check_alive()
        signals = await fired_signals(temporal.client, set(runs))
    finally:
        if alertmanager is not None:
            await alertmanager.stop()
        if relay is not None:
            await relay.stop()

    assert_one_incident_per_alert(runs, expected, signals,
                                  {incident_id(alert): alert["labels"] for alert in alerts})
    # The kill left a gap that only Alertmanager's retries could fill.
    assert incidents_at_kill < len(alerts)
    assert down.requests_failed >= 1, down

    report("relay_crash", {
        "alerts_sent": len(alerts),
        "incidents": len(runs),
        "executions": sum(runs.values()),
        "incidents_before_kill": incidents_at_kill,
        "am_requests_failed_while_relay_down": down.requests_failed,
        "am_requests_total": after.requests,
        "am_requests_failed_total": after.requests_failed,
        "am_flushes_total": after.notifications,
        "am_flushes_failed_total": after.notifications_failed,
        "incidents_signalled_more_than_once": sum(1 for fired in signals.values() if len(fired) > 1),
        "relay_back_to_last_incident_seconds": round(last_incident - back, 2),
    })
