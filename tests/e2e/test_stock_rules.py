"""End to end with the rules most adopters already run: the stock kube-prometheus rules, unmodified.

A fault injected into the sandbox → the upstream rule (only `for:` and range windows shortened)
in Debian's Prometheus, scraping the sandbox's exporters as kube-prometheus scrapes a cluster →
Alertmanager grouping by namespace as kube-prometheus ships it → relay → incident → owner
resolution (the alerts name pods, not Deployments) → one action → PromQL verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from embedded.sandbox_monitoring import SandboxMonitoring
from sandbox import SandboxCluster
from tests.e2e.relaying import relaying
from tests.support.policies import fast_policy
from tests.support.zt import running_workers
from workflows.incident import IncidentWorkflow
from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.models import IncidentStatus
from zerotouch.policy import load_policy

TOKEN = "stock-" + uuid.uuid4().hex
# Every alert's condition must hold this long, and range windows of minutes and hours shrink to
# WINDOW: the rules fire within seconds of a fault and clear within seconds of its fix.
HOLD, WINDOW, INTERVAL = "2s", "15s", "1s"

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Stack:
    client: Client
    sandbox: SandboxCluster
    monitoring: SandboxMonitoring
    cluster: str
    group_by: list[str]

    def incident_id(self, alertname: str, namespace: str, workload: str) -> str:
        labels = {"alertname": alertname, "namespace": namespace, "workload": workload}
        event = AlertEvent(fingerprint="x", status="firing", labels=labels, starts_at=datetime.now(UTC))
        return incident_id_for(event, self.group_by, self.cluster)

    async def status(self, incident_id: str) -> IncidentStatus | None:
        with contextlib.suppress(RPCError, WorkflowQueryFailedError):
            return await self.client.get_workflow_handle(incident_id).query(IncidentWorkflow.status)
        return None

    async def first_resolved(self, incident_ids: list[str], timeout: float = 150.0) -> IncidentStatus:
        """The first of the incidents that automation resolved and verified."""
        deadline = asyncio.get_running_loop().time() + timeout
        seen: dict[str, IncidentStatus] = {}
        while asyncio.get_running_loop().time() < deadline:
            for incident_id in incident_ids:
                status = await self.status(incident_id)
                if status is None:
                    continue
                seen[incident_id] = status
                if status.state in ("resolved", "closed") and status.actions:
                    return status
            await asyncio.sleep(0.5)
        raise AssertionError(f"no incident of {incident_ids} was remediated: {list(seen.values())}")

    async def triaged(self, incident_id: str, timeout: float = 60.0) -> IncidentStatus:
        deadline = asyncio.get_running_loop().time() + timeout
        status = None
        while asyncio.get_running_loop().time() < deadline:
            status = await self.status(incident_id)
            if status is not None and status.state != "open":
                return status
            await asyncio.sleep(0.5)
        raise AssertionError(f"incident {incident_id} was never triaged: {status}")

    async def alerts(self, **labels: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.monitoring.alertmanager_url}/api/v2/alerts", params={"active": "true"})
        return [a for a in response.json() if all(a["labels"].get(k) == v for k, v in labels.items())]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("stock")
    token_file = workdir / "relay-token"
    token_file.write_text(TOKEN)
    policy_path = fast_policy(workdir / "policy.yaml", target_cooldown="10m")
    policy = load_policy(policy_path)
    cluster = f"stock{uuid.uuid4().hex[:6]}"
    async with relaying(dev_env, policy, token=TOKEN, cluster=cluster, service="zerotouch-stock-e2e") as started:
        monitoring = SandboxMonitoring(workdir, sandbox_url=started.sandbox.url, relay_url=started.relay_url,
                                       token_file=token_file, hold=HOLD, window=WINDOW, interval=INTERVAL)
        try:
            await asyncio.to_thread(monitoring.start)
            async with running_workers(started.client, cluster, kubernetes_url=started.sandbox.url,
                                       prometheus_url=monitoring.prometheus_url, policy_path=str(policy_path)):
                yield Stack(started.client, started.sandbox, monitoring, cluster, policy.group_by)
        finally:
            monitoring.stop()


@pytest.mark.parametrize(
    ("fault", "deployment", "alertnames", "action_kind", "runbooks"),
    [
        # A crash loop also makes the Deployment's replicas mismatch: both alerts, one restart.
        ("crashloop", "web", ["KubePodCrashLooping", "KubeDeploymentReplicasMismatch"], "restart",
         {"restart-crashlooping"}),
        # Containers stuck in ContainerCreating (KubePodNotReady fires too: a human is told, nothing acts).
        ("stuck-pending", "checkout", ["KubeContainerWaiting", "KubeDeploymentReplicasMismatch"], "restart",
         {"restart-stuck-pods", "restart-crashlooping"}),
        # A release with an image tag that does not exist: the image pull and the stalled rollout both
        # alert; one rollback brings the previous revision back.
        ("stuck-rollout", "email-worker", ["KubeContainerWaiting", "KubeDeploymentRolloutStuck"], "rollback",
         {"rollback-unpullable-image", "rollback-stuck-rollout"}),
    ],
)
async def test_stock_alert_is_remediated_once_verified_and_resolved(
    stack: Stack, fault: str, deployment: str, alertnames: list[str], action_kind: str, runbooks: set[str]
) -> None:
    if fault == "stuck-rollout":  # Kubernetes' default deadline is 10 minutes
        patched = httpx.patch(f"{stack.sandbox.url}/apis/apps/v1/namespaces/shop/deployments/{deployment}",
                              content=b'{"spec": {"progressDeadlineSeconds": 3}}',
                              headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
    before = len(stack.sandbox.actions(namespace="shop", name=deployment, kind=action_kind))
    stack.sandbox.inject(fault, namespace="shop", deployment=deployment)
    incident_ids = [stack.incident_id(name, "shop", deployment) for name in alertnames]
    acted = await stack.first_resolved(incident_ids)
    assert acted.runbook in runbooks and acted.attempts == 1
    assert stack.sandbox.is_healthy("shop", deployment)
    assert any("verified" in entry.message for entry in acted.timeline), acted.timeline
    # The first alert name is the pod-only one: its incident found the Deployment by owner references.
    pod_only = await stack.triaged(incident_ids[0])
    assert "deployment" not in pod_only.labels and pod_only.labels.get("pod", "").startswith(f"{deployment}-")
    resolved = [e.message for e in pod_only.timeline if e.message.startswith("workload: ")]
    assert resolved and resolved[0].endswith(f"→ deployment shop/{deployment}"), pod_only.timeline
    assert acted.service == f"shop/{deployment}", "not the exporter (kube-state-metrics)"
    # The sibling incidents (other alert names for the same Deployment) never act a second time:
    # wait until every stock alert for it has cleared, then count.
    deadline = asyncio.get_running_loop().time() + 90
    while await stack.alerts(namespace="shop") and asyncio.get_running_loop().time() < deadline:
        firing = [a for a in await stack.alerts(namespace="shop") if a["labels"].get("alertname") in alertnames]
        if not firing:
            break
        await asyncio.sleep(1)
    after = stack.sandbox.actions(namespace="shop", name=deployment, kind=action_kind)
    assert len(after) - before == 1, "exactly one remediation for the workload"
    other_kinds = {"restart", "rollback", "scale", "memory"} - {action_kind}
    assert [a for a in stack.sandbox.actions(namespace="shop", name=deployment) if a["kind"] in other_kinds] == []


async def test_watchdog_is_accepted_and_opens_nothing(stack: Stack) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    watchdogs: list[dict[str, Any]] = []
    while not watchdogs and asyncio.get_running_loop().time() < deadline:
        watchdogs = await stack.alerts(alertname="Watchdog")
        await asyncio.sleep(0.5)
    assert watchdogs, "the stock Watchdog fires all the time"
    labels = dict(watchdogs[0]["labels"])
    event = AlertEvent(fingerprint="x", status="firing", labels=labels, starts_at=datetime.now(UTC))
    with pytest.raises(RPCError) as raised:
        await stack.client.get_workflow_handle(incident_id_for(event, stack.group_by, stack.cluster)).describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND
    # ... although Alertmanager did deliver to the relay (it sends every group, Watchdog's too).
    async with httpx.AsyncClient() as http:
        exposition = (await http.get(f"{stack.monitoring.alertmanager_url}/metrics")).text
    sent = [line for line in exposition.splitlines()
            if line.startswith('alertmanager_notifications_total{integration="webhook"')]
    assert sent and float(sent[0].rsplit(" ", 1)[1]) > 0, sent
