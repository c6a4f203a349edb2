"""Metrics and traces after a real incident: relay → dev server → workers → sandbox, all over HTTP.

The relay and the workers each get their own `Telemetry` (as separate processes would),
so each ``/metrics`` page is checked for what that process alone must have counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters import steer
from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from tests.support.dashboard import series_names
from tests.support.policies import fast_policy
from tests.support.zt import alert, open_incident, running_workers, until_closed, wait_for
from workflows.incident import IncidentWorkflow
from zerotouch.governor_client import ensure_governor, pause, set_mode
from zerotouch.governor_policy import governor_settings
from zerotouch.metrics_server import MetricsServer
from zerotouch.policy import load_policy
from zerotouch.telemetry import Telemetry
from zerotouch.temporal import data_converter

TOKEN = "metrics-" + uuid.uuid4().hex
STARTED_AGO = timedelta(seconds=40)


def _alert(starts_at: datetime, status: str = "firing") -> dict[str, object]:
    return {
        "status": status,
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web",
                   "severity": "warning"},
        "annotations": {"summary": "web crashloops"},
        "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "",
    }


def _payload(*alerts: dict[str, object]) -> dict[str, object]:
    return {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "zerotouch",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
            "alerts": list(alerts)}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, keyed by name and label set."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum over samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in page.items() if n == name and wanted <= ls)


@dataclass
class Process:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    client: Client


@contextlib.asynccontextmanager
async def process(env: WorkflowEnvironment, service: str) -> AsyncIterator[Process]:
    spans = InMemorySpanExporter()
    telemetry = Telemetry(service, span_exporter=spans, batch_spans=False)
    await telemetry.start()
    try:
        config = env.client.service_client.config
        client = await Client.connect(config.target_host, namespace=env.client.namespace,
                                      data_converter=data_converter(), **telemetry.client_options())
        yield Process(telemetry, spans, client)
    finally:
        await telemetry.stop()


async def _scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.text


async def _until(url: str, name: str, minimum: float, timeout: float = 20.0, **labels: str) -> str:
    """Scrape until ``name`` reaches ``minimum`` (metrics are drained from Temporal's buffer each second)."""
    deadline = asyncio.get_running_loop().time() + timeout
    text = ""
    while asyncio.get_running_loop().time() < deadline:
        text = await _scrape(url)
        if value(samples(text), name, **labels) >= minimum:
            return text
        await asyncio.sleep(0.3)
    raise AssertionError(f"{name}{labels} never reached {minimum} at {url}:\n{text}")


async def _promtool_check(text: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(text.encode())
    assert proc.returncode == 0, out.decode()


@pytest.fixture
def cluster() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


async def test_an_incident_shows_in_the_relay_and_worker_metrics_and_one_trace(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, tmp_path: Path
) -> None:
    policy = fast_policy(tmp_path / "policy.yaml")
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    starts_at = datetime.now(UTC) - STARTED_AGO
    async with process(dev_env, "zerotouch-relay") as relay_process, \
            process(dev_env, "zerotouch-worker") as worker_process:
        worker_metrics = MetricsServer(worker_process.telemetry, port=0)
        worker_metrics.start()
        relay = RelayServer(RelayConfig(port=0, token=TOKEN, cluster=cluster), relay_process.client,
                            telemetry=relay_process.telemetry)
        try:
            async with running_workers(worker_process.client, cluster, kubernetes_url=sandbox.url,
                                       policy_path=str(policy), ledger_url=f"sqlite:///{tmp_path}/ledger.db"):
                await relay.start()
                began = datetime.now(UTC)
                async with httpx.AsyncClient(base_url=relay.url, timeout=30,
                                             headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                    first = await http.post("/alertmanager", json=_payload(_alert(starts_at)))
                    assert first.status_code == 200, first.text
                    [incident_id] = first.json()["incidents"]
                    # Alertmanager's repeat of the same firing alert: absorbed by the relay, not a new incident.
                    repeat = await http.post("/alertmanager", json=_payload(_alert(starts_at)))
                    assert repeat.status_code == 200 and repeat.json()["incidents"] == [incident_id]
                    refused = await http.post("/alertmanager", content=b"{}",
                                              headers={"Content-Type": "application/json"})
                    assert refused.status_code == 422
                handle = worker_process.client.get_workflow_handle(incident_id)
                deadline = asyncio.get_running_loop().time() + 60
                while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    if asyncio.get_running_loop().time() > deadline:
                        status = await handle.query(IncidentWorkflow.status)
                        raise AssertionError(f"incident did not close: {status.model_dump_json(indent=1)}")
                    await asyncio.sleep(0.2)
                closed = datetime.now(UTC)
                await _until(worker_metrics.url, "zerotouch_incidents_closed_total", 1)
                # The workflow's own counter is recorded in its last workflow task; the Core counts
                # the completion only once the server has taken that task, so it can reach the
                # buffer one drain later. Counters only grow, so this page has both.
                worker_text = await _until(worker_metrics.url, "temporal_workflow_completed_total", 1)
            relay_text = await _scrape(f"{relay.url}/metrics")
        finally:
            await relay.stop()
            worker_metrics.stop()

        relay_page, worker_page = samples(relay_text), samples(worker_text)
        assert value(relay_page, "zerotouch_alerts_received_total", status="firing") == 2
        assert value(relay_page, "zerotouch_webhooks_total", code="200") == 2
        assert value(relay_page, "zerotouch_webhooks_total", code="422") == 1
        assert value(relay_page, "zerotouch_relay_delivery_seconds_count") == 2
        assert value(relay_page, "zerotouch_relay_alerts_absorbed_total") == 1  # the repeat never reached Temporal

        assert value(worker_page, "zerotouch_incidents_opened_total", runbook="restart-crashlooping") == 1
        assert value(worker_page, "zerotouch_incidents_closed_total",
                     outcome="resolved", handled_by="automation") == 1
        assert value(worker_page, "zerotouch_incidents_closed_total", handled_by="human") == 0
        assert value(worker_page, "zerotouch_alerts_deduplicated_total") == 0
        assert value(worker_page, "zerotouch_actions_total", action="restart_deployment", result="applied") == 1
        assert value(worker_page, "zerotouch_governor_decisions_total", code="granted") == 1
        assert value(worker_page, "zerotouch_governor_refusals_total") == 0
        assert value(worker_page, "zerotouch_approvals_requested_total") == 0
        # MTTR runs from the alert's startsAt to verified recovery: at least the 40 s it had been
        # firing, at most that plus the time this test took.
        assert value(worker_page, "zerotouch_mttr_seconds_count", handled_by="automation") == 1
        mttr = value(worker_page, "zerotouch_mttr_seconds_sum", handled_by="automation")
        assert STARTED_AGO.total_seconds() <= mttr <= (closed - starts_at).total_seconds(), mttr
        assert value(worker_page, "zerotouch_mttr_seconds_bucket", handled_by="automation", le="+Inf") == 1
        mttd = value(worker_page, "zerotouch_mttd_seconds_sum")
        assert STARTED_AGO.total_seconds() <= mttd <= (began - starts_at).total_seconds() + 5, mttd
        # Temporal's own SDK metrics are on the same page.
        assert value(worker_page, "temporal_workflow_completed_total") >= 1
        assert value(worker_page, "temporal_activity_execution_latency_seconds_count") >= 1

        # The dashboard's Temporal panels query series the workers really export.
        exported = {name for name, _ in worker_page} | {name for name, _ in relay_page}
        temporal_queried = {s for s in series_names() if s.startswith("temporal_")}
        assert temporal_queried and temporal_queried <= exported, temporal_queried - exported

        await _promtool_check(relay_text)
        await _promtool_check(worker_text)

        # One trace: the relay's webhook span is the root of the workflow's and the activities' spans.
        [webhook] = [s for s in relay_process.spans.get_finished_spans() if s.name == "relay.alertmanager"][:1]
        trace_id = webhook.context.trace_id
        worker_spans = [s for s in worker_process.spans.get_finished_spans() if s.context.trace_id == trace_id]
        names = {s.name for s in worker_spans}
        assert any(n.startswith("RunWorkflow:") for n in names), names
        assert "RunActivity:restart_deployment" in names, names


async def test_approvals_take_overs_and_refusals_are_counted_as_human_work(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, tmp_path: Path
) -> None:
    policy = load_policy(fast_policy(tmp_path / "policy.yaml"))
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    async with process(dev_env, "zerotouch-worker") as worker:
        client = worker.client
        metrics_server = MetricsServer(worker.telemetry, port=0)
        metrics_server.start()
        try:
            async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy,
                                       ledger_url=f"sqlite:///{tmp_path}/ledger.db"):
                await ensure_governor(client, cluster, governor_settings(policy))
                await set_mode(client, cluster, "approve-all", by="alice", reason="metrics test")
                approved = await open_incident(
                    client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"), policy)
                await wait_for(approved, lambda s: s.pending_approval is not None)
                await steer.approve(client, approved.id, "bob")
                await until_closed(approved, timeout=60)

                await pause(client, cluster, "alice", "change freeze", timedelta(minutes=10))
                # Really crash looping: the runbook confirms the symptom before it asks the Governor.
                sandbox.inject("crashloop", namespace="shop", deployment="email-worker")
                taken = await open_incident(
                    client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="email-worker"), policy)
                await wait_for(taken, lambda s: s.state == "escalated")
                await steer.take_over(client, taken.id, "carol")
                await open_incident(
                    client, cluster,
                    alert("KubePodCrashLooping", status="resolved", namespace="shop", deployment="email-worker"),
                    policy, incident_id=taken.id)
                await until_closed(taken, timeout=60)
                text = await _until(metrics_server.url, "zerotouch_incidents_closed_total", 2)
        finally:
            metrics_server.stop()

    page = samples(text)
    assert value(page, "zerotouch_approvals_requested_total") == 1
    assert value(page, "zerotouch_approvals_decided_total", decision="approved") == 1
    assert value(page, "zerotouch_approval_wait_seconds_count", decision="approved") == 1
    assert value(page, "zerotouch_governor_decisions_total", code="approve_all") == 1
    assert value(page, "zerotouch_governor_refusals_total", reason="paused") >= 1
    assert value(page, "zerotouch_governor_refusals_total", reason="approve_all") == 0  # asked a human instead
    assert value(page, "zerotouch_incidents_closed_total", outcome="resolved", handled_by="human") == 1
    assert value(page, "zerotouch_incidents_closed_total", outcome="taken_over", handled_by="human") == 1
    assert value(page, "zerotouch_incidents_closed_total", handled_by="automation") == 0
    assert value(page, "zerotouch_mttr_seconds_count", handled_by="human") == 2
    await _promtool_check(text)
