"""Humans can steer incidents with the stock `temporal` CLI, by handler name, without zerotouch installed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.support.zt import alert, open_incident, running_workers, wait_for
from tests.workflows.policies import make_policy
from zerotouch.binaries import temporal_cli


async def temporal(env: WorkflowEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the event loop: the workers answering it live in this loop."""
    address = env.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        temporal_cli(), *args, "--address", address, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    return subprocess.CompletedProcess(args, process.returncode or 0, stdout.decode(), stderr.decode())


async def test_query_reject_and_approve_with_the_temporal_cli(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster
) -> None:
    cluster = f"cli{uuid.uuid4().hex[:6]}"
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(
            dev_env.client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"),
            make_policy(mode="approve-all"),
        )
        await wait_for(handle, lambda s: s.state == "awaiting_approval")
        query = await temporal(dev_env, "workflow", "query", "--workflow-id", handle.id, "--name", "status",
                         "--output", "json")
        assert query.returncode == 0, query.stderr
        assert json.loads(query.stdout)["queryResult"][0]["state"] == "awaiting_approval"
        refused = await temporal(dev_env, "workflow", "update", "execute", "--workflow-id", handle.id,
                           "--name", "approve", "--input", '{"by": "mallory"}')
        assert refused.returncode != 0 and "not an approver" in refused.stderr + refused.stdout
        approved = await temporal(dev_env, "workflow", "update", "execute", "--workflow-id", handle.id,
                            "--name", "approve", "--input", '{"by": "bob", "note": "from the temporal CLI"}')
        assert approved.returncode == 0, approved.stderr
        status = await wait_for(handle, lambda s: s.state == "resolved")
        visibility = f'WorkflowId="{handle.id}" AND IncidentState="resolved"'
        listed = await temporal(dev_env, "workflow", "list", "--query", visibility)
        assert handle.id in listed.stdout
        await handle.terminate("test over")
    assert any(e.actor == "bob" and "approved" in e.message for e in status.timeline)
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
