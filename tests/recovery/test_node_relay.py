"""The relay starts a node recovery for a node alert with a valid `node` label, once; every other alert as before."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from starters.relay.config import RelayConfig
from starters.relay.deliver import deliver
from tests.relay.conftest import alert, payload
from zerotouch.alerts import WebhookPayload
from zerotouch.recovery import recovery_id


async def test_a_node_alert_starts_one_recovery_and_other_alerts_go_to_incidents(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    cluster = f"r{uuid.uuid4().hex[:8]}"
    config = RelayConfig(cluster=cluster)
    body = payload(alert("KubeNodeNotReady", node="worker-7"), alert("KubeNodeUnreachable", node="worker-7"),
                   alert("KubeNodeNotReady", node="../etc"), alert("KubePodCrashLooping", namespace="shop", pod="x"))
    wanted = recovery_id("node", cluster, "worker-7")
    handle = client.get_workflow_handle(wanted)
    first = await deliver(client, WebhookPayload.model_validate(body), config)
    try:
        started = await handle.describe()
        again = await deliver(client, WebhookPayload.model_validate(body), config)  # Alertmanager repeats the group
        described = await handle.describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        assert described.run_id == started.run_id, "the duplicate delivery joined the running recovery"
        assert wanted in first.incidents and wanted in again.incidents
        # The crash loop and the node alert whose label is not a node name went to incidents, as before.
        others = [i for i in first.incidents if i != wanted]
        assert len(others) == 2 and any("KubePodCrashLooping" in i for i in others), first.incidents
        assert any("KubeNodeNotReady" in i for i in others), "a malformed node label is not dropped"
    finally:
        await handle.terminate("test over")
        for incident in first.incidents:
            if incident != wanted:
                await client.get_workflow_handle(incident).terminate("test over")
