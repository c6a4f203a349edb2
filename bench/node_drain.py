"""`python -m bench.node_drain [--pods 30]`: how long a node recovery takes to drain a node of N pods.

The sandbox's sandbox-node-2 gets a deployment's worth of pods until it holds N that are not the
DaemonSet's, then fails NotReady; a NodeRecoveryWorkflow (in-process workers, the Temporal dev
server in memory) cordons it, evicts every pod through the Eviction API, waits for the workloads to
run Ready elsewhere, has the sandbox reboot the node (1 s) and uncordons it. Prints the timeline's
durations: drain (first eviction to the last pod gone), reschedule, and the whole recovery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml
from kubernetes import client as k8s
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from sandbox.client import fail_node_via_http
from sandbox.demo import deployment
from workers.run import build_workers
from zerotouch.binaries import temporal_cli
from zerotouch.names import ALL_QUEUES, SEARCH_ATTRIBUTES, WORKFLOWS_QUEUE, queue_for
from zerotouch.ports import free_port
from zerotouch.recovery import NODE_RECOVERY_WORKFLOW, NodeRecoveryInput, RecoveryStatus, recovery_id
from zerotouch.settings import WorkerSettings
from zerotouch.temporal import data_converter

NODE = "sandbox-node-2"
REPO = Path(__file__).resolve().parents[1]


def _policy(directory: Path) -> Path:
    document = yaml.safe_load((REPO / "deploy/policy/zerotouch.yaml").read_text())
    document["escalation"] = {}
    document.setdefault("recovery", {})["nodes"] = {
        "provider": "sandbox", "provider_delay": "1s", "eviction_retry": "300ms", "drain_timeout": "5m",
        "healthy_timeout": "5m", "ready_timeout": "5m"}
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _fill(sandbox: SandboxCluster, pods: int) -> int:
    """Pods (not the DaemonSet's) on NODE until there are at least `pods`; returns how many there are."""
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    with k8s.ApiClient(configuration) as api:
        core = k8s.CoreV1Api(api)

        def on_node() -> list[k8s.V1Pod]:
            listed = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE}").items
            return [p for p in listed if p.metadata is not None
                    and not any(r.kind == "DaemonSet" for r in p.metadata.owner_references or [])]

        missing = pods - len(on_node())
        if missing > 0:  # the scheduler spreads a deployment's pods over the three nodes
            body = deployment("filler", 3 * missing, "registry.local/shop/filler:1.0.0", "64Mi", 8080)
            k8s.AppsV1Api(api).create_namespaced_deployment("shop", body)  # type: ignore[arg-type]
        deadline = time.monotonic() + 120
        while not sandbox.is_healthy("shop", "filler") and missing > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the filler deployment did not become healthy in 120 s")
            time.sleep(0.2)
        return len(on_node())


async def measure(pods: int) -> dict[str, float]:
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.05)
    with tempfile.TemporaryDirectory() as scratch, sandbox:
        found = await asyncio.to_thread(_fill, sandbox, pods)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(), port=free_port(), search_attributes=SEARCH_ATTRIBUTES,
            data_converter=data_converter())
        try:
            cluster = f"bench{uuid.uuid4().hex[:6]}"
            settings = WorkerSettings(kubernetes_url=sandbox.url, ledger_url=f"sqlite:///{scratch}/ledger.db",
                                      policy_path=str(_policy(Path(scratch))))
            with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
                async with httpx.AsyncClient() as http, contextlib.AsyncExitStack() as stack:
                    for worker in build_workers(env.client, ALL_QUEUES, settings, http=http, executor=executor,
                                                cluster=cluster):
                        await stack.enter_async_context(worker)
                    fail_node_via_http(sandbox.url, NODE, "NotReady")
                    started = time.monotonic()
                    status: RecoveryStatus = await env.client.execute_workflow(
                        NODE_RECOVERY_WORKFLOW, NodeRecoveryInput(cluster=cluster, node=NODE, reason="bench"),
                        id=recovery_id("node", cluster, NODE), task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
                        result_type=RecoveryStatus)
                    total = time.monotonic() - started
        finally:
            await env.shutdown()
    if status.stage != "recovered":
        raise RuntimeError(f"the recovery ended {status.stage}: {status.outcome}")
    at = {e.step: e.at for e in status.timeline if e.outcome == "ok"}
    return {"pods": found, "drain": (at["drain"] - at["cordon"]).total_seconds(),
            "reschedule": (at["reschedule"] - at["drain"]).total_seconds(),
            "cordon_to_uncordon": (at["uncordon"] - at["cordon"]).total_seconds(), "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.node_drain", description=__doc__)
    parser.add_argument("--pods", type=int, default=30, help="pods on the node to drain (default 30)")
    parser.add_argument("--runs", type=int, default=3, help="recoveries measured, each on a fresh sandbox")
    args = parser.parse_args()
    for run in range(args.runs):
        result = asyncio.run(measure(args.pods))
        print(f"run {run + 1}: {int(result['pods'])} pods: drain {result['drain']:.2f} s, reschedule "
              f"{result['reschedule']:.2f} s, cordon→uncordon {result['cordon_to_uncordon']:.2f} s "
              f"(1 s of it the sandbox's reboot), workflow start→end {result['total']:.2f} s")


if __name__ == "__main__":
    main()
