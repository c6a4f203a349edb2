"""The relay is down longer than the resolution cooldown while the fault comes back: the incident stays open.

Alertmanager tries to send the resolution, fails (relay down), then the alert fires again: its
firing set equals what it last delivered, so it sends nothing new until repeat_interval. Before
closing, the incident asks Alertmanager, finds the alert active, and acts again, all while the
relay is still down. Every server is real: Alertmanager, the relay and the worker as their own
processes, the Temporal dev server, the sandbox cluster; the test plays Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import yaml
from temporalio.client import Client

from sandbox import SandboxCluster
from tests.delivery.alertmanager import Alertmanager, am_alert
from tests.delivery.conftest import Temporal, report, start_relay
from tests.delivery.incidents import ALERTMANAGER_GROUP_BY, executions, fired_signals, incident_id
from tests.support.policies import fast_policy
from tests.support.processes import ChildProcess, zerotouch_command
from zerotouch.models import IncidentStatus
from zerotouch.names import QUERY_STATUS
from zerotouch.ports import free_port

NAMESPACE, TARGET = "shop", "web"
COOLDOWN_SECONDS = 6.0
ALERT_LIFETIME_SECONDS = 3.0  # re-sent every tick while broken, as Prometheus does
TICK_SECONDS = 0.5
TIMEOUT = 90.0
# Alertmanager retries a failed flush within a notify context of at least 10 s, with the payload it
# started with: a relay back within it receives the stale "resolved", then the firing (no gap).
NOTIFY_CONTEXT_SECONDS = 10.0


def _alert() -> dict[str, object]:
    return am_alert("KubePodCrashLooping", namespace=NAMESPACE, deployment=TARGET, severity="critical",
                    lasts=ALERT_LIFETIME_SECONDS)


async def _prometheus(alertmanager: Alertmanager, sandbox: SandboxCluster) -> None:
    """Fire the target's alert while the sandbox says it is broken; then let it expire."""
    while True:
        if not sandbox.is_healthy(NAMESPACE, TARGET):
            await alertmanager.post([_alert()])
        await asyncio.sleep(TICK_SECONDS)


async def _status(client: Client, workflow_id: str) -> IncidentStatus:
    return await client.get_workflow_handle(workflow_id).query(QUERY_STATUS, result_type=IncidentStatus)


async def _until(what: str, predicate: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.2)


async def test_relay_down_past_the_cooldown_while_the_fault_returns_keeps_the_incident_open(
    temporal: Temporal, tmp_path: Path, token_file: Path
) -> None:
    policy = fast_policy(tmp_path / "policy.yaml")
    document = yaml.safe_load(policy.read_text())
    document["resolution_cooldown"] = f"{COOLDOWN_SECONDS:g}s"
    policy.write_text(yaml.safe_dump(document, sort_keys=False))
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.1)
    sandbox.start()
    workflow_id = incident_id(_alert())
    loop = asyncio.get_running_loop()
    worker = relay = None
    alertmanager: Alertmanager | None = None
    prometheus: asyncio.Task[None] | None = None
    try:
        worker = await ChildProcess.start(
            zerotouch_command("worker", "--address", temporal.server.address, "--kubernetes-url", sandbox.url,
                              "--policy", str(policy)),
            log=tmp_path / "worker.log", name="worker",
            env={"ZEROTOUCH_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "ZEROTOUCH_STATE_DIR": str(tmp_path)},
        )
        port = free_port()
        relay = await start_relay(temporal, port, token_file, tmp_path / "relay.log", "--policy", str(policy))
        alertmanager = await Alertmanager.start(tmp_path, relay_url=f"http://127.0.0.1:{port}", token_file=token_file,
                                                group_by=ALERTMANAGER_GROUP_BY, group_wait="0s", group_interval="1s")
        am = alertmanager

        def restarts() -> int:
            return len(sandbox.actions(namespace=NAMESPACE, name=TARGET, kind="restart"))

        async def restarted(times: int) -> bool:
            return restarts() >= times

        async def resolved() -> bool:
            return (await _status(temporal.client, workflow_id)).state == "resolved"

        async def gone_from_alertmanager() -> bool:
            async with httpx.AsyncClient(timeout=5.0) as http:
                listed = (await http.get(f"{am.url}/api/v2/alerts", params={"active": "true"})).json()
            return not any(alert["labels"].get("deployment") == TARGET for alert in listed)

        sandbox.inject("crashloop", namespace=NAMESPACE, deployment=TARGET)
        prometheus = asyncio.create_task(_prometheus(alertmanager, sandbox))
        # The first restart is applied: the relay dies before the alert's resolution can reach it.
        await _until("the first restart", lambda: restarted(1))
        await relay.kill()
        relay_killed = loop.time()
        fired_at_kill = len((await fired_signals(temporal.client, {workflow_id}))[workflow_id])
        await _until("recovery verified", resolved)
        resolved_at = loop.time()
        # Alertmanager resolves the alert (its webhook fails: relay down), then the fault comes back.
        await _until("the alert resolved at Alertmanager", gone_from_alertmanager)
        resolution_flush_from = loop.time()
        assert loop.time() < resolved_at + COOLDOWN_SECONDS, "the fault must return within the cooldown"
        sandbox.inject("crashloop", namespace=NAMESPACE, deployment=TARGET)
        fault_returned = loop.time()
        await _until("the second restart, the relay still down", lambda: restarted(2))
        acted_again = loop.time()
        middle = await _status(temporal.client, workflow_id)
        # Down longer than the cooldown and the resolution's failing flush, then back; Alertmanager later
        # delivers the final resolution.
        back_at = max(relay_killed + COOLDOWN_SECONDS, resolution_flush_from + NOTIFY_CONTEXT_SECONDS) + 2
        await asyncio.sleep(max(0.0, back_at - loop.time()))
        relay_down = loop.time() - relay_killed
        relay = await start_relay(temporal, port, token_file, tmp_path / "relay.log", "--policy", str(policy))
        handle = temporal.client.get_workflow_handle(workflow_id, result_type=IncidentStatus)
        final = await asyncio.wait_for(handle.result(), TIMEOUT)
        runs = await executions(temporal.client)
        fired_after = len((await fired_signals(temporal.client, {workflow_id}))[workflow_id])
        worker.check_alive()
        relay.check_alive()
        restarted_total, healthy = restarts(), sandbox.is_healthy(NAMESPACE, TARGET)
    finally:
        if prometheus is not None:
            prometheus.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prometheus
        if alertmanager is not None:
            await alertmanager.stop()
        for child in (relay, worker):
            if child is not None:
                await child.stop()
        sandbox.stop()

    messages = [entry.message for entry in final.timeline]
    assert runs == {workflow_id: 1}, runs
    assert final.state == "resolved" and final.attempts == 2, (final.state, final.attempts)
    assert restarted_total == 2 and healthy
    assert acted_again < relay_killed + relay_down, "it acted again while the relay was still down"
    assert relay_down > COOLDOWN_SECONDS
    assert fired_after == fired_at_kill, "no delivery told the incident: Alertmanager never re-sent the firing alert"
    assert any(m.startswith("KubePodCrashLooping active at Alertmanager http://127.0.0.1:") and
               m.endswith("treated as fired again") for m in messages), messages
    assert "treated as fired again" in " ".join(e.message for e in middle.timeline)
    assert any(m.startswith(f"confirmed with Alertmanager at {alertmanager.url}: none of its") for m in messages)
    report("resolution_at_source", {
        "relay_down_seconds": round(relay_down, 1),
        "cooldown_seconds": COOLDOWN_SECONDS,
        "fault_returned_to_second_restart_seconds": round(acted_again - fault_returned, 1),
        "alert_fired_signals": fired_after,
        "restarts": 2,
    })
