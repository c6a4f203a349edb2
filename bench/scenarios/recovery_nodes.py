"""Scenario 11, node drain: a node of N pods fails NotReady and a NodeRecoveryWorkflow drains it.

The sandbox's sandbox-node-2 gets a deployment's worth of pods until it holds N that are not the
DaemonSet's, then fails NotReady; the workflow cordons it, evicts every pod through the Eviction
API, waits for the workloads to run Ready elsewhere, has the sandbox reboot the node (1 s) and
uncordons it. The durations come from the recovery's own timeline; the sandbox's action log says
whether every pod left by eviction and none was deleted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from temporalio.client import Client

from bench.scenarios.recovery_env import in_process_workers, recovery_policy
from bench.scenarios.recovery_report import Drain
from sandbox import SandboxCluster
from sandbox.client import fail_node_via_http
from sandbox.demo import deployment
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.recovery import NODE_RECOVERY_WORKFLOW, NodeRecoveryInput, RecoveryStatus, recovery_id

NODE = "sandbox-node-2"
NODES = {"provider": "sandbox", "provider_delay": "1s", "eviction_retry": "300ms", "drain_timeout": "5m",
         "healthy_timeout": "5m", "ready_timeout": "5m"}


def _on_node(core: k8s.CoreV1Api) -> list[tuple[str, str]]:
    """(namespace, name) of the pods on NODE that are not the DaemonSet's: what a drain must evict."""
    listed = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE}").items
    return [(str(p.metadata.namespace), str(p.metadata.name)) for p in listed if p.metadata is not None
            and not any(r.kind == "DaemonSet" for r in p.metadata.owner_references or [])]


def fill(sandbox: SandboxCluster, pods: int) -> list[tuple[str, str]]:
    """Pods on NODE until there are at least `pods`; the pods there."""
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    with k8s.ApiClient(configuration) as api:
        core = k8s.CoreV1Api(api)
        missing = pods - len(_on_node(core))
        if missing > 0:  # the scheduler spreads a deployment's pods over the three nodes
            body = deployment("filler", 3 * missing, "registry.local/shop/filler:1.0.0", "64Mi", 8080)
            k8s.AppsV1Api(api).create_namespaced_deployment("shop", body)  # type: ignore[arg-type]
            deadline = time.monotonic() + 120
            while not sandbox.is_healthy("shop", "filler"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the filler deployment did not become healthy in 120 s")
                time.sleep(0.2)
        return _on_node(core)


def _checked(sandbox: SandboxCluster, before: list[tuple[str, str]], since: int,
             status: RecoveryStatus) -> tuple[int, list[str]]:
    """How many of `before` the action log shows evicted, and what went wrong."""
    actions: list[dict[str, Any]] = [a for a in sandbox.actions(include_failed=True) if int(a["seq"]) > since]
    evicted = {(a["namespace"], a["name"]) for a in actions if a["kind"] == "evict" and a["ok"]}
    deleted = [a["name"] for a in actions if a["method"] == "DELETE" and a["resource"] == "pods"]
    wrong = [] if status.stage == "recovered" else [f"ended {status.stage}: {status.outcome}"]
    if missed := [name for name in before if name not in evicted]:
        wrong.append(f"{len(missed)} pods not evicted (e.g. {missed[0]})")
    if deleted:
        wrong.append(f"{len(deleted)} pods deleted directly (e.g. {deleted[0]})")
    return len(before) - len(missed), wrong


async def one_drain(client: Client, workdir: Path, pods: int) -> Drain:
    """One recovery of NODE on a fresh sandbox holding `pods` pods there."""
    workdir.mkdir(parents=True, exist_ok=True)
    policy = recovery_policy(workdir / "policy.yaml", {"nodes": NODES})
    cluster = f"bench{uuid.uuid4().hex[:6]}"
    with SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.05) as sandbox:
        before = await asyncio.to_thread(fill, sandbox, pods)
        since = max((int(a["seq"]) for a in sandbox.actions(include_failed=True)), default=0)
        async with in_process_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy,
                                      ledger_url=f"sqlite:///{workdir}/ledger.db"):
            await asyncio.to_thread(fail_node_via_http, sandbox.url, NODE, "NotReady")
            started = time.monotonic()
            status: RecoveryStatus = await client.execute_workflow(
                NODE_RECOVERY_WORKFLOW, NodeRecoveryInput(cluster=cluster, node=NODE, reason="bench"),
                id=recovery_id("node", cluster, NODE), task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
                result_type=RecoveryStatus)
            total = time.monotonic() - started
        evicted, wrong = await asyncio.to_thread(_checked, sandbox, before, since, status)
    at = {e.step: e.at for e in status.timeline if e.outcome == "ok"}
    if not {"cordon", "drain", "reschedule", "uncordon"} <= set(at):
        return Drain(pods=len(before), drain=0, reschedule=0, cordon_to_uncordon=0, total=total, evicted=evicted,
                     wrong=wrong or [f"timeline lacks a step: {sorted(at)}"], timed=False)
    return Drain(pods=len(before), drain=(at["drain"] - at["cordon"]).total_seconds(),
                 reschedule=(at["reschedule"] - at["drain"]).total_seconds(),
                 cordon_to_uncordon=(at["uncordon"] - at["cordon"]).total_seconds(), total=total,
                 evicted=evicted, wrong=wrong)
