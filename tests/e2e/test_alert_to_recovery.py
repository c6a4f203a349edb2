"""End to end: fault in the sandbox → real Prometheus rule → real Alertmanager → relay → incident → recovery.

Everything is real and local except Kubernetes, which is the sandbox cluster. The shipped
rules and policy are used with their waiting times shortened, so each case takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from embedded.monitoring import Alertmanager, Prometheus, fast_rules
from sandbox import SandboxCluster
from tests.e2e.relaying import relaying
from tests.support.policies import fast_policy
from tests.support.zt import running_workers
from workflows.incident import IncidentWorkflow
from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.models import AbortInput, IncidentStatus
from zerotouch.policy import load_policy

REPO = Path(__file__).resolve().parents[2]
TOKEN = "e2e-" + uuid.uuid4().hex


@dataclass
class Stack:
    client: Client
    sandbox: SandboxCluster
    prometheus: Prometheus
    alertmanager: Alertmanager
    cluster: str
    group_by: list[str]
    alertmanager_relay_url: str

    def incident_id(self, alertname: str, namespace: str, deployment: str) -> str:
        labels = {"alertname": alertname, "namespace": namespace, "deployment": deployment}
        event = AlertEvent(fingerprint="x", status="firing", labels=labels, starts_at=datetime.now(UTC))
        return incident_id_for(event, self.group_by, self.cluster)

    async def final_status(self, incident_id: str, timeout: float = 120.0) -> IncidentStatus:
        """Wait until the incident exists and its workflow has finished; return its last status."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                handle = self.client.get_workflow_handle(incident_id, result_type=IncidentStatus)
                return await asyncio.wait_for(handle.result(), timeout=5)
            except Exception:
                await asyncio.sleep(0.5)
        raise AssertionError(f"incident {incident_id} did not finish in {timeout}s")

    async def alert_clears(self, alertname: str, deployment: str, timeout: float = 30.0) -> None:
        """Wait until Alertmanager holds no active alert of this name for the deployment."""
        deadline = asyncio.get_running_loop().time() + timeout
        active: list[dict[str, object]] = []
        async with httpx.AsyncClient() as http:
            while asyncio.get_running_loop().time() < deadline:
                response = await http.get(f"{self.alertmanager.url}/api/v2/alerts", params={"active": "true"})
                active = [a for a in response.json()
                          if a["labels"].get("alertname") == alertname and a["labels"].get("deployment") == deployment]
                if not active:
                    return
                await asyncio.sleep(0.5)
        raise AssertionError(f"{alertname} for {deployment} still active: {active}")

    async def status_when(self, incident_id: str, state: str, timeout: float = 120.0) -> IncidentStatus:
        deadline = asyncio.get_running_loop().time() + timeout
        last = None
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):  # not started yet
                last = await self.client.get_workflow_handle(incident_id).query(IncidentWorkflow.status)
                if last.state == state:
                    return last
            await asyncio.sleep(0.5)
        raise AssertionError(f"incident {incident_id} never reached {state}; last: {last}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("e2e")
    token_file = workdir / "relay-token"
    token_file.write_text(TOKEN)
    policy_path = fast_policy(workdir / "policy.yaml")
    policy = load_policy(policy_path)
    cluster = f"e2e{uuid.uuid4().hex[:6]}"
    alertmanager = prometheus = None
    async with relaying(dev_env, policy, token=TOKEN, cluster=cluster, service="zerotouch-e2e") as started:
        try:
            alertmanager = Alertmanager(workdir, started.relay_url, token_file)
            rules = fast_rules(REPO / "deploy/prometheus/rules/zerotouch.rules.yml", workdir / "rules.yml")
            prometheus = Prometheus(workdir, [started.sandbox.url.removeprefix("http://")], rules,
                                    alertmanager.url.removeprefix("http://"),
                                    extra_jobs={"zerotouch": [started.relay_url.removeprefix("http://")]})
            async with running_workers(started.client, cluster, kubernetes_url=started.sandbox.url,
                                       prometheus_url=prometheus.url, policy_path=str(policy_path)):
                yield Stack(started.client, started.sandbox, prometheus, alertmanager, cluster, policy.group_by,
                            started.relay.url)
        finally:
            for process in (prometheus, alertmanager):
                if process is not None:
                    process.stop()


pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("fault", "alertname", "deployment", "action_kind", "runbook"),
    [
        ("crashloop", "KubePodCrashLooping", "web", "restart", "restart-crashlooping"),
        ("oom", "KubePodOOMKilled", "checkout", "memory", "raise-memory-on-oom"),
        ("overload", "KafkaConsumerLagHigh", "email-worker", "scale", "scale-consumers-on-lag"),
        ("bad-deploy", "HighErrorRateAfterDeploy", "web", "rollback", "rollback-bad-deploy"),
    ],
)
async def test_fault_is_detected_remediated_once_and_resolved(
    stack: Stack, fault: str, alertname: str, deployment: str, action_kind: str, runbook: str
) -> None:
    incident_id = stack.incident_id(alertname, "shop", deployment)
    before = len(stack.sandbox.actions(namespace="shop", name=deployment, kind=action_kind))
    stack.sandbox.inject(fault, namespace="shop", deployment=deployment)
    final = await stack.final_status(incident_id)
    assert final.state == "resolved", final.model_dump_json(indent=1)
    assert final.runbook == runbook
    after = stack.sandbox.actions(namespace="shop", name=deployment, kind=action_kind)
    assert len(after) - before == final.attempts == 1, "exactly one remediation applied"
    assert stack.sandbox.is_healthy("shop", deployment)
    kinds = {entry.kind for entry in final.timeline}
    assert {"detected", "triage", "action", "verification", "resolution"} <= kinds
    await stack.alert_clears(alertname, deployment)


async def test_disk_pressure_runs_the_cleanup_job(stack: Stack) -> None:
    namespace, deployment = "shop", "checkout"
    stack.sandbox.inject("disk-pressure", namespace=namespace, deployment=deployment)
    # The alert names the volume's deployment; find the incident through its status.
    incident_id = stack.incident_id("DiskSpaceHigh", namespace, deployment)
    final = await stack.final_status(incident_id)
    assert final.state == "resolved", final.model_dump_json(indent=1)
    assert len(stack.sandbox.actions(namespace=namespace, kind="job")) == 1


async def test_unfixable_escalates_and_freezes_after_two_attempts(stack: Stack) -> None:
    incident_id = stack.incident_id("KubePodCrashLooping", "shop", "web")
    await stack.final_status(incident_id)  # an earlier case's incident on shop/web must be over
    before = len(stack.sandbox.actions(namespace="shop", name="web", kind="restart"))
    stack.sandbox.inject("unfixable", namespace="shop", deployment="web")
    status = await stack.status_when(incident_id, "escalated")
    assert status.frozen and status.attempts == 2 and len(status.actions) == 2
    await asyncio.sleep(5)  # frozen: nothing more happens on its own
    handle = stack.client.get_workflow_handle(incident_id)
    later = await handle.query(IncidentWorkflow.status)
    assert later.state == "escalated" and later.attempts == 2 and len(later.actions) == 2
    # Other alerts for the same workload (KubeDeploymentReplicasMismatch, when its rule fires in time)
    # are incidents of their own, bounded by the Governor's target cooldown: at least this one's two.
    assert len(stack.sandbox.actions(namespace="shop", name="web", kind="restart")) - before >= 2
    await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="e2e", reason="test over"))
    stack.sandbox.clear(namespace="shop", deployment="web")


async def test_prometheus_scrapes_zerotouch_metrics(stack: Stack) -> None:
    # An alert no runbook covers, straight to the relay: it opens an incident (and escalates)
    # without touching the sandbox, so this test stands alone whatever ran before it.
    alertname = f"E2EMetrics{uuid.uuid4().hex[:6]}"
    body = {"version": "4", "status": "firing", "receiver": "zerotouch", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "groupKey": "{}",
            "alerts": [{"status": "firing", "labels": {"alertname": alertname, "namespace": "shop"},
                        "annotations": {}, "startsAt": datetime.now(UTC).isoformat(), "fingerprint": ""}]}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{stack.alertmanager_relay_url}/alertmanager", json=body,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    [incident_id] = response.json()["incidents"]
    try:
        await stack.status_when(incident_id, "escalated")
        queries = {
            'up{job="zerotouch"}': 1,
            'sum(zerotouch_alerts_received_total)': 1,
            'sum(zerotouch_incidents_opened_total{runbook="none"})': 1,
            'sum(temporal_workflow_task_execution_latency_seconds_count)': 1,
        }
        deadline = asyncio.get_running_loop().time() + 30
        missing = dict(queries)
        async with httpx.AsyncClient(base_url=stack.prometheus.url, timeout=5) as http:
            while missing and asyncio.get_running_loop().time() < deadline:
                for query, minimum in list(missing.items()):
                    result = (await http.get("/api/v1/query", params={"query": query})).json()["data"]["result"]
                    if result and float(result[0]["value"][1]) >= minimum:
                        del missing[query]
                await asyncio.sleep(1)
        assert not missing, f"Prometheus never saw: {missing}"
    finally:
        handle = stack.client.get_workflow_handle(incident_id)
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="e2e", reason="test over"))
