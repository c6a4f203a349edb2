"""One Alertmanager aggregation group of 5,000 kube-prometheus-sized alerts: every alert becomes its incident.

kube-prometheus routes by namespace, so a namespace-wide failure puts thousands of alerts in one
group, and Alertmanager posts a group whole (the zerotouch receiver sets no ``max_alerts``): one
webhook of about 6 MiB here. The relay takes it (default body limit 8 MiB) and answers 200 once
Temporal has every alert. When that takes longer than its Temporal timeout (8 s) — on 2 shared
cores the dev server takes 100-250 signal-with-starts a second, so 5,000 take 20-40 s — or Temporal
goes away halfway, it answers 503, Alertmanager posts the whole group again, and the relay continues
with the alerts Temporal has not acknowledged yet (`starters/relay/deliver.py`, ``CatchUp``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from tests.delivery.alertmanager import Alertmanager, WebhookCounters, kube_alert
from tests.delivery.conftest import Temporal, report, start_relay
from tests.delivery.incidents import (
    assert_one_incident_per_alert,
    executions,
    fired_signals,
    incident_id,
)
from tests.support.processes import ChildProcess
from zerotouch.names import INCIDENT_WORKFLOW
from zerotouch.ports import free_port

ALERTS = 5000
# Long enough for all 5,000 alerts to be in the group before its first flush: one webhook carries them all.
# Alertmanager takes them in one by one; 3 s was once too short on a machine busy with other servers
# (the first webhook carried 201 of them).
GROUP_WAIT = "8s"
DELIVERY_TIMEOUT = 180.0
# The relay's peak resident memory may exceed its idle size by at most this much. Measured: 97-114
# MiB while a group of 5,000 arrives 5-10 times over, two attempts at once at times (Alertmanager's
# next flush arrives while the relay still works on the attempt whose notify deadline expired).
RSS_GROWTH_LIMIT_MIB = 192
# Spans of 5,000 signal-with-starts would be printed into the relay's log (the console exporter).
RELAY_ENV = {"OTEL_TRACES_EXPORTER": "none"}
# Temporal goes away once this many incidents exist, mid-delivery.
OUTAGE_AFTER_INCIDENTS = 1000
OUTAGE_FAILED_REQUESTS = 2

_SAMPLE = re.compile(r'^(zerotouch_\w+)\{([^}]*)\}\s+(\S+)$', re.MULTILINE)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The kernel's high-water mark of the process's resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


async def relay_metrics(port: int) -> dict[str, float]:
    """The relay's own counters from /metrics, ``name{labels}`` → value."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return {f"{name}{{{labels}}}": float(value) for name, labels, value in _SAMPLE.findall(text)}


def _sum(metrics: dict[str, float], prefix: str, label: str = "") -> float:
    return sum(value for key, value in metrics.items() if key.startswith(prefix + "{") and label in key)


async def until(probe: Callable[[], Awaitable[bool]], what: str, timeout: float, every: float = 0.2) -> float:
    """Poll ``probe`` until true; the loop time it was first seen true. Fails after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        if loop.time() > deadline:
            raise AssertionError(f"{what} within {timeout:g}s")
        await asyncio.sleep(every)
    return loop.time()


async def incident_count(client: Client) -> int:
    """Incident executions Temporal has: one cheap count, not a listing of thousands."""
    return (await client.count_workflows(f'WorkflowType="{INCIDENT_WORKFLOW}"')).count


class Storm:
    """A relay (its own process) and Alertmanager grouping by namespace, as kube-prometheus does."""

    def __init__(self, temporal: Temporal, tmp_path: Path, token_file: Path, namespace: str) -> None:
        self.temporal, self.tmp_path, self.token_file = temporal, tmp_path, token_file
        self.alerts = [kube_alert(namespace, f"deploy-{i:05d}") for i in range(ALERTS)]
        self.expected = {incident_id(alert) for alert in self.alerts}
        assert len(self.expected) == ALERTS
        self.port = free_port()
        self.relay: ChildProcess | None = None
        self.alertmanager: Alertmanager | None = None
        self.before = WebhookCounters({})

    async def start(self) -> None:
        self.relay = await start_relay(self.temporal, self.port, self.token_file, self.tmp_path / "relay.log",
                                       env=RELAY_ENV)
        self.alertmanager = await Alertmanager.start(
            self.tmp_path, relay_url=f"http://127.0.0.1:{self.port}", token_file=self.token_file,
            group_by=["namespace"], group_wait=GROUP_WAIT, group_interval="1s")
        self.before = await self.alertmanager.webhook_counters()

    async def stop(self) -> None:
        if self.alertmanager is not None:
            await self.alertmanager.stop()
        if self.relay is not None:
            await self.relay.stop()

    async def post(self) -> None:
        assert self.alertmanager is not None
        await self.alertmanager.post(self.alerts)

    async def counters(self) -> WebhookCounters:
        assert self.alertmanager is not None
        return await self.alertmanager.webhook_counters() - self.before

    async def first_webhook(self) -> float:
        async def sent() -> bool:
            return (await self.counters()).requests >= 1

        return await until(sent, "Alertmanager sent no webhook", 60, every=0.1)

    async def relay_answered_200(self) -> float:
        async def answered() -> bool:
            return _sum(await relay_metrics(self.port), "zerotouch_webhooks_total", 'code="200"') >= 1

        return await until(answered, "the relay never answered 200", DELIVERY_TIMEOUT)

    async def every_incident(self, client: Client) -> float:
        async def all_there() -> bool:
            return await incident_count(client) >= ALERTS

        return await until(all_there, f"fewer than {ALERTS} incidents", DELIVERY_TIMEOUT, every=0.5)

    def relay_log_count(self, text: str) -> int:
        """Lines of the relay's log (its warnings: INFO is not logged) that contain ``text``."""
        assert self.relay is not None
        return self.relay.log.read_text(errors="replace").count(text)

    async def verify(self) -> dict[str, Any]:
        """Exactly one incident per alert, each signalled with its own alert; the relay's figures."""
        assert self.relay is not None
        client = self.temporal.client
        runs = await executions(client)
        signals = await fired_signals(client, set(runs))
        assert_one_incident_per_alert(runs, self.expected, signals,
                                      {incident_id(alert): alert["labels"] for alert in self.alerts})
        self.relay.check_alive()
        metrics = await relay_metrics(self.port)
        answered_200 = _sum(metrics, "zerotouch_webhooks_total", 'code="200"')
        webhooks = _sum(metrics, "zerotouch_webhooks_total")
        # The group came whole in every webhook: each one the relay parsed carried all 5,000 alerts.
        assert _sum(metrics, "zerotouch_alerts_received_total") == ALERTS * webhooks, metrics
        return {
            "relay_cpu_seconds": round(cpu_seconds(self.relay.pid), 1),
            "temporal_cpu_seconds": round(cpu_seconds(self.temporal.server.process.pid), 1)
            if self.temporal.server.process is not None else None,
            "incidents": len(runs),
            "executions": sum(runs.values()),
            "incidents_signalled_more_than_once": sum(1 for fired in signals.values() if len(fired) > 1),
            "relay_200s": int(answered_200),
            "relay_503s": int(_sum(metrics, "zerotouch_webhooks_total", 'code="503"')),
            "alerts_json_mib": round(len(json.dumps(self.alerts)) / 2**20, 2),
        }


async def test_one_group_of_5000_alerts_becomes_5000_incidents(
    temporal: Temporal, tmp_path: Path, token_file: Path
) -> None:
    storm = Storm(temporal, tmp_path, token_file, "storm")
    loop = asyncio.get_running_loop()
    try:
        await storm.start()
        assert storm.relay is not None
        idle_mib = storm.relay.rss_kib() / 1024
        await storm.post()
        first_webhook = await storm.first_webhook()
        all_incidents = await storm.every_incident(temporal.client)
        answered = await storm.relay_answered_200()
        peak_mib = peak_rss_mib(storm.relay.pid)
        counters = await storm.counters()
        figures = await storm.verify()
        verified = loop.time()
    finally:
        await storm.stop()

    assert peak_mib - idle_mib <= RSS_GROWTH_LIMIT_MIB, (idle_mib, peak_mib)
    report("large_group", {
        "alerts": ALERTS,
        **figures,
        "first_webhook_to_last_incident_seconds": round(all_incidents - first_webhook, 2),
        "first_webhook_to_relay_200_seconds": round(answered - first_webhook, 2),
        "verification_seconds": round(verified - answered, 2),
        "am_requests": counters.requests,
        "am_requests_failed": counters.requests_failed,
        "am_flushes": counters.notifications,
        "am_flushes_failed": counters.notifications_failed,
        "relay_idle_rss_mib": round(idle_mib, 1),
        "relay_peak_rss_mib": round(peak_mib, 1),
    })


async def test_one_group_of_5000_alerts_survives_temporal_going_away_mid_delivery(
    temporal: Temporal, tmp_path: Path, token_file: Path
) -> None:
    storm = Storm(temporal, tmp_path, token_file, "outage")
    loop = asyncio.get_running_loop()
    try:
        await storm.start()
        assert storm.relay is not None
        idle_mib = storm.relay.rss_kib() / 1024
        await storm.post()
        first_webhook = await storm.first_webhook()

        seen: list[int] = []

        async def halfway() -> bool:
            seen.append(await incident_count(temporal.client))
            return seen[-1] >= OUTAGE_AFTER_INCIDENTS

        await until(halfway, f"fewer than {OUTAGE_AFTER_INCIDENTS} incidents", DELIVERY_TIMEOUT, every=0.1)
        await temporal.server.kill()  # SIGKILL, mid-delivery
        killed = loop.time()
        down_from = await storm.counters()
        relay_503s_before = storm.relay_log_count("answering 503")

        # Down until Alertmanager has seen its webhook fail and retried it.
        async def retried() -> bool:
            return (await storm.counters()).requests_failed - down_from.requests_failed >= OUTAGE_FAILED_REQUESTS

        await until(retried, "Alertmanager saw no failed webhook while Temporal was down", 90)
        down = await storm.counters() - down_from
        relay_503s_while_down = storm.relay_log_count("answering 503") - relay_503s_before
        await temporal.server.start()  # same SQLite file and port; the relay keeps its client
        back = loop.time()
        all_incidents = await storm.every_incident(temporal.client)
        answered = await storm.relay_answered_200()
        peak_mib = peak_rss_mib(storm.relay.pid)
        counters = await storm.counters()
        figures = await storm.verify()
    finally:
        await storm.stop()

    # The outage was real: the relay refused with 5xx and Alertmanager retried.
    assert relay_503s_while_down >= 1, relay_503s_while_down
    assert down.requests_failed >= OUTAGE_FAILED_REQUESTS, down
    assert peak_mib - idle_mib <= RSS_GROWTH_LIMIT_MIB, (idle_mib, peak_mib)
    report("large_group_temporal_outage", {
        "alerts": ALERTS,
        "incidents_seen_before_outage": seen[-1],
        **figures,
        "temporal_down_seconds": round(back - killed, 2),
        "relay_503s_while_down": relay_503s_while_down,
        "am_requests_failed_while_down": down.requests_failed,
        "temporal_back_to_last_incident_seconds": round(all_incidents - back, 2),
        "first_webhook_to_relay_200_seconds": round(answered - first_webhook, 2),
        "am_requests": counters.requests,
        "am_requests_failed": counters.requests_failed,
        "am_flushes_failed": counters.notifications_failed,
        "relay_idle_rss_mib": round(idle_mib, 1),
        "relay_peak_rss_mib": round(peak_mib, 1),
    })
