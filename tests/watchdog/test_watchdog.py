"""The watchdog on the real thing: Debian's Prometheus and Alertmanager scraping the sandbox with the stock
kube-prometheus rules, the real relay and workers, PostgreSQL for the connections check.

A crash loop the watchdog finds is the incident the stock KubePodCrashLooping alert opens (same id, same
fingerprint) and is acted on once; connections above 85% of max_connections are found in pg_stat_activity;
a relay that hears nothing for longer than `silence_after` pages once per silence, through a Schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from embedded.sandbox_monitoring import SandboxMonitoring
from sandbox import SandboxCluster
from starters import schedules
from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from tests.e2e.relaying import relaying
from tests.support.policies import fast_policy
from tests.support.postgres import running_postgres
from tests.support.receiver import Receiver
from tests.support.waiting import eventually
from tests.support.zt import running_workers
from workflows.incident import IncidentWorkflow
from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.metric_names import RELAY_LAST_DELIVERY
from zerotouch.models import IncidentStatus
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy, load_policy
from zerotouch.schedules import schedule_id
from zerotouch.telemetry import Telemetry
from zerotouch.watchdog import WATCHDOG_WORKFLOW, WatchdogArgs, WatchdogInput, WatchdogResult

TOKEN = "watchdog-" + uuid.uuid4().hex
HOLD, WINDOW, INTERVAL = "2s", "15s", "1s"  # as tests/e2e/test_stock_rules.py: rules fire within seconds
PG_REFERENCE = "wdg"  # the data worker resolves it from ZEROTOUCH_PG_WDG_DSN
SILENCE_AFTER = 2.0

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Stack:
    client: Client
    sandbox: SandboxCluster
    monitoring: SandboxMonitoring
    relay_url: str
    silent_relay_url: str
    pager: Receiver
    cluster: str
    policy: Policy

    async def cycle(self, checks: list[str] | None, *, silence: bool = False) -> WatchdogResult:
        """One watchdog cycle, started by hand (the schedule's runs are the same workflow)."""
        result: WatchdogResult = await self.client.execute_workflow(
            WATCHDOG_WORKFLOW, WatchdogInput(cluster=self.cluster, arguments=WatchdogArgs(checks=checks,
                                                                                          silence=silence)),
            id=f"watchdog-test-{uuid.uuid4().hex[:8]}", task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster),
            result_type=WatchdogResult)
        return result

    def incident_id(self, labels: dict[str, str]) -> str:
        event = AlertEvent(fingerprint="x", status="firing", labels=labels, starts_at=datetime.now(UTC))
        return incident_id_for(event, self.policy.group_by, self.cluster)

    async def status(self, incident_id: str) -> IncidentStatus | None:
        with contextlib.suppress(RPCError, WorkflowQueryFailedError):
            return await self.client.get_workflow_handle(incident_id).query(IncidentWorkflow.status)
        return None

    async def alerts(self, **labels: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.monitoring.alertmanager_url}/api/v2/alerts", params={"active": "true"})
        return [a for a in response.json() if all(a["labels"].get(k) == v for k, v in labels.items())]

    def pages(self) -> list[Any]:
        return [body for path, body in self.pager.received if path == "/page"]


def _policy(workdir: Path, *, silent_relay_url: str, pager_url: str) -> Path:
    path = fast_policy(workdir / "policy.yaml", target_cooldown="10m")
    document = yaml.safe_load(path.read_text())
    document["channels"]["watchdog-pager"] = {"type": "webhook", "url": f"{pager_url}/page"}
    document["watchdog"] = {
        "relay_url": silent_relay_url, "silence_after": f"{SILENCE_AFTER:g}s", "page": ["watchdog-pager"],
        "checks": {
            # The stock rule's window shortened as the test's rules are (WINDOW).
            "crash-loops": {"query": "max_over_time(kube_pod_container_status_waiting_reason"
                                     f'{{reason="CrashLoopBackOff", job="kube-state-metrics"}}[{WINDOW}])'},
            "broken": {"alertname": "Broken", "query": "sum((", "threshold": 1},
            "pg-connections": {"kind": "postgres_connections", "alertname": "PostgresConnectionsHigh",
                               "connection": PG_REFERENCE, "threshold": 0.85,
                               "labels": {"namespace": "db", "service": PG_REFERENCE, "deployment": PG_REFERENCE,
                                          "severity": "warning"}},
        },
    }
    # Started by hand in the test (`trigger`), never by the clock: paused, hourly.
    document["schedules"] = [*document.get("schedules", []),
                             {"name": "watchdog-silence", "workflow": "WatchdogWorkflow", "interval": "1h",
                              "paused": True, "arguments": {"checks": []}}]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("watchdog")
    token_file = workdir / "relay-token"
    token_file.write_text(TOKEN)
    cluster = f"wd{uuid.uuid4().hex[:6]}"
    # A second relay that nothing delivers to: the one whose silence the watchdog watches.
    silent = RelayServer(RelayConfig(host="127.0.0.1", port=0, token=TOKEN, cluster=cluster), dev_env.client,
                         telemetry=Telemetry("zerotouch-watchdog-silent"))
    with Receiver() as pager:
        await silent.start()
        try:
            silent_url = f"http://127.0.0.1:{silent.port}"
            policy_path = _policy(workdir, silent_relay_url=silent_url, pager_url=pager.url)
            policy = load_policy(policy_path)
            async with relaying(dev_env, policy, token=TOKEN, cluster=cluster, service="zerotouch-watchdog") as up:
                monitoring = SandboxMonitoring(workdir, sandbox_url=up.sandbox.url, relay_url=up.relay_url,
                                               token_file=token_file, hold=HOLD, window=WINDOW, interval=INTERVAL)
                try:
                    await asyncio.to_thread(monitoring.start)
                    async with running_workers(up.client, cluster, kubernetes_url=up.sandbox.url,
                                               prometheus_url=monitoring.prometheus_url,
                                               policy_path=str(policy_path)):
                        yield Stack(up.client, up.sandbox, monitoring, up.relay_url, silent_url, pager, cluster,
                                    policy)
                finally:
                    monitoring.stop()
        finally:
            await silent.stop()


async def test_a_crash_loop_found_by_the_watchdog_is_the_stock_alerts_incident_and_acted_on_once(
    stack: Stack,
) -> None:
    before = len(stack.sandbox.actions(namespace="shop", name="web", kind="restart"))
    stack.sandbox.inject("crashloop", namespace="shop", deployment="web")

    async def found() -> WatchdogResult | None:
        result = await stack.cycle(["crash-loops"])
        return result if any(f.labels.get("pod", "").startswith("web-") for f in result.findings) else None

    result = await eventually(found, timeout=30, interval=0.5, what="the watchdog finding the crash loop")
    finding = next(f for f in result.findings if f.labels.get("pod", "").startswith("web-"))
    pod = finding.labels["pod"]
    expected = stack.incident_id({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": pod})
    assert finding.incident_id == expected and expected in result.incidents
    assert [(c.name, c.queries, c.error) for c in result.checks] == [("crash-loops", 1, "")]
    assert result.queries == 1 and result.seconds >= 0

    # The stock rule fires for the same series: Alertmanager's alert has the watchdog's labels and fingerprint.
    async def stock_alert() -> list[dict[str, Any]]:
        return await stack.alerts(alertname="KubePodCrashLooping", namespace="shop", pod=pod)

    alerts = await eventually(stock_alert, timeout=30, interval=0.5, what="the stock KubePodCrashLooping alert")
    assert alerts[0]["labels"] == finding.labels
    assert alerts[0]["fingerprint"] == finding.fingerprint

    # ... and the relay delivers it to the same incident (one incident, its alert counted twice or more).
    async def acted() -> IncidentStatus | None:
        status = await stack.status(expected)
        if status is None or not status.actions or status.alerts_received < 2:
            return None
        return status if status.state in ("resolved", "closed") else None

    status = await eventually(acted, timeout=60, interval=0.5, what="the incident remediated and resolved")
    assert status.runbook == "restart-crashlooping" and status.attempts == 1
    # The relay's delivery of the watchdog's pod was a repeat of its alert (same fingerprint), not a second
    # alert; other pods of `web` join the same incident as alerts of their own.
    joined = [e.message for e in status.timeline if e.message.startswith("another alert joined: ")]
    assert not [m for m in joined if finding.fingerprint in m], joined
    assert stack.sandbox.is_healthy("shop", "web")

    # Once the stock alert clears, a further cycle finds nothing and no second action ever ran.
    async def cleared() -> bool:
        return not await stock_alert()

    await eventually(cleared, timeout=40, interval=0.5, what="the stock alert resolved")
    after = await stack.cycle(["crash-loops"])
    assert not [f for f in after.findings if f.labels.get("pod", "").startswith("web-")]
    restarts = stack.sandbox.actions(namespace="shop", name="web", kind="restart")
    assert len(restarts) - before == 1, restarts


async def test_postgres_connections_above_85_percent_open_the_alerts_incident(stack: Stack) -> None:
    with running_postgres(max_connections=20) as server, _environment(f"ZEROTOUCH_PG_{PG_REFERENCE.upper()}_DSN",
                                                                      server.dsn()):
        quiet = await stack.cycle(["pg-connections"])
        assert quiet.findings == [] and quiet.checks[0].error == ""
        # 17 held + the check's own = 18 of 20 (90%): past 85%.
        held = [await psycopg.AsyncConnection.connect(server.dsn()) for _ in range(17)]
        try:
            busy = await stack.cycle(["pg-connections"])
        finally:
            for connection in held:
                await connection.close()
    labels = {"alertname": "PostgresConnectionsHigh", "namespace": "db", "service": PG_REFERENCE,
              "deployment": PG_REFERENCE, "severity": "warning"}
    assert [(f.check, f.labels, round(f.value, 2)) for f in busy.findings] == [("pg-connections", labels, 0.9)]
    assert busy.incidents == [stack.incident_id(labels)]
    status = await eventually(lambda: stack.status(busy.incidents[0]), what="the incident opened")
    assert status.labels["alertname"] == "PostgresConnectionsHigh"


async def test_a_check_that_cannot_run_is_reported_and_the_others_still_run(stack: Stack) -> None:
    result = await stack.cycle(["broken", "stuck-rollouts"])
    reports = {c.name: c for c in result.checks}
    assert "Prometheus rejected" in reports["broken"].error and reports["broken"].queries == 0
    assert reports["stuck-rollouts"].error == "" and reports["stuck-rollouts"].queries == 1


async def test_alertmanager_silence_pages_once_per_silence(stack: Stack) -> None:
    mine = [d for d in stack.policy.schedules if d.name == "watchdog-silence"]  # not the shipped backups
    await schedules.apply(stack.client, mine, stack.cluster)
    handle = stack.client.get_schedule_handle(schedule_id("watchdog-silence", stack.cluster))

    async def scheduled_cycle() -> WatchdogResult:
        runs = len((await handle.describe()).info.recent_actions)
        await schedules.trigger(stack.client, "watchdog-silence", cluster=stack.cluster)

        async def finished() -> str | None:
            info = (await handle.describe()).info
            if len(info.recent_actions) <= runs or info.running_actions:
                return None
            action = info.recent_actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return action.workflow_id

        workflow_id = await eventually(finished, timeout=30, interval=0.2, what="the scheduled cycle")
        result: WatchdogResult = await stack.client.get_workflow_handle(workflow_id,
                                                                        result_type=WatchdogResult).result()
        return result

    # The relay Alertmanager delivers to is not silent: its gauge moved with the last delivery.
    assert await _last_delivery(stack.relay_url) > datetime.now(UTC).timestamp() - 600

    # The silent relay's start counts as its last delivery.
    await eventually(lambda: _silent_longer_than(stack.silent_relay_url, SILENCE_AFTER + 0.5), timeout=10,
                     what="the relay silent past silence_after")
    first = await scheduled_cycle()
    assert first.silence is not None and first.silence.silent and first.silence.paged == ["watchdog-pager"]
    assert first.checks == [] and first.queries == 0
    assert len(stack.pages()) == 1
    page = stack.pages()[0]
    assert page["severity"] == "P1" and "Alertmanager has delivered nothing" in page["summary"]

    second = await scheduled_cycle()  # the same silence: not paged again
    assert second.silence is not None and second.silence.silent and second.silence.paged == []
    assert len(stack.pages()) == 1

    # A delivery (the always-firing Watchdog, which opens nothing) ends the silence; the next one pages again.
    await _deliver_watchdog(stack.silent_relay_url)
    await eventually(lambda: _silent_longer_than(stack.silent_relay_url, SILENCE_AFTER + 0.5), timeout=10,
                     what="silent again")
    third = await scheduled_cycle()
    assert third.silence is not None and third.silence.paged == ["watchdog-pager"]
    assert third.silence.episode != first.silence.episode
    assert len(stack.pages()) == 2


async def _last_delivery(relay_url: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{relay_url}/metrics")).text
    line = next(line for line in text.splitlines() if line.startswith(RELAY_LAST_DELIVERY + " "))
    return float(line.split()[1])


async def _silent_longer_than(relay_url: str, seconds: float) -> bool:
    return datetime.now(UTC).timestamp() - await _last_delivery(relay_url) > seconds


async def _deliver_watchdog(relay_url: str) -> None:
    payload = {"version": "4", "groupKey": "{}:{alertname=\"Watchdog\"}", "status": "firing", "receiver": "zerotouch",
               "alerts": [{"status": "firing", "labels": {"alertname": "Watchdog", "severity": "none"},
                           "startsAt": datetime.now(UTC).isoformat()}]}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{relay_url}/alertmanager", json=payload,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.json()["heartbeats"] == 1 and response.json()["incidents"] == []
