# The typed Kubernetes client wants its model classes; the API takes the same plain manifests.
# mypy: disable-error-code="arg-type, union-attr"
"""Node recovery tests' support: the policy, the workers, starting a recovery, reading the sandbox's nodes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowHandle

from sandbox import SandboxCluster
from sandbox.client import node_state_via_http
from tests.support.policies import fast_policy
from workers.run import build_workers
from zerotouch.names import ALL_QUEUES, WORKFLOWS_QUEUE, queue_for
from zerotouch.node_recovery_models import OWNER_ANNOTATION
from zerotouch.recovery import (
    NODE_RECOVERY_WORKFLOW,
    QUERY_RECOVERY_STATUS,
    NodeRecoveryInput,
    RecoveryStatus,
    recovery_id,
)
from zerotouch.settings import WorkerSettings

# Waits shortened to what the sandbox needs; the capacity budget as the example: 51% of the nodes.
FAST_NODES: dict[str, Any] = {
    "min_schedulable": "51%", "max_concurrent_node_actions": 2, "lease_ttl": "30s", "drain_timeout": "60s",
    "eviction_retry": "300ms", "healthy_timeout": "60s", "provider": "sandbox", "action": "reboot",
    "provider_delay": "1s", "ready_timeout": "60s",
}


def node_policy(directory: Path, **nodes: Any) -> Path:
    """The shipped policy with short waits and a `recovery.nodes` section (FAST_NODES updated with `nodes`)."""
    path = fast_policy(directory / "policy.yaml")
    document = yaml.safe_load(path.read_text())
    document.setdefault("recovery", {})["nodes"] = {**FAST_NODES, **nodes}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextlib.asynccontextmanager
async def node_workers(client: Client, cluster: str, *, sandbox: SandboxCluster, policy: Path, ledger: str,
                       queues: Sequence[str] = ALL_QUEUES) -> AsyncIterator[None]:
    settings = WorkerSettings(kubernetes_url=sandbox.url, ledger_url=ledger, policy_path=str(policy))
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10.0) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, queues, settings, http=http, executor=executor, cluster=cluster):
                await stack.enter_async_context(worker)
            yield


async def start_recovery(client: Client, cluster: str, node: str, *, reason: str = "KubeNodeNotReady",
                         requested_by: str = "alertmanager", dry_run: bool = False
                         ) -> WorkflowHandle[Any, RecoveryStatus]:
    return await client.start_workflow(
        NODE_RECOVERY_WORKFLOW,
        NodeRecoveryInput(cluster=cluster, node=node, reason=reason, requested_by=requested_by, dry_run=dry_run),
        id=recovery_id("node", cluster, node), task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
        result_type=RecoveryStatus,
    )


async def status_of(handle: WorkflowHandle[Any, RecoveryStatus]) -> RecoveryStatus | None:
    status: RecoveryStatus | None = await handle.query(QUERY_RECOVERY_STATUS, result_type=RecoveryStatus)
    return status


def steps_done(status: RecoveryStatus | None) -> set[str]:
    return {e.step for e in status.timeline if e.outcome == "ok"} if status else set()


def node_state(sandbox: SandboxCluster, node: str) -> dict[str, Any]:
    """{"ready": "True"|..., "unschedulable": bool, "owner": the cordon's owner annotation or ""}."""
    state = node_state_via_http(sandbox.url, node)
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    with k8s.ApiClient(configuration) as api:
        annotations = k8s.CoreV1Api(api).read_node(node).metadata.annotations or {}
    return {**state, "owner": annotations.get(OWNER_ANNOTATION, "")}


def pods_on(sandbox: SandboxCluster, node: str) -> list[tuple[str, str, str]]:
    """(namespace, name, controller kind) of the pods bound to `node`."""
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    with k8s.ApiClient(configuration) as api:
        listed = k8s.CoreV1Api(api).list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}")
    found = []
    for pod in listed.items:
        refs = [r for r in pod.metadata.owner_references or [] if r.controller]
        found.append((str(pod.metadata.namespace), str(pod.metadata.name), str(refs[0].kind) if refs else ""))
    return found


def _api(sandbox: SandboxCluster) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    return k8s.ApiClient(configuration)


def add_guarded_deployment(sandbox: SandboxCluster, name: str, *, replicas: int, min_available: int,
                           timeout: float = 60.0) -> str:
    """A deployment in `shop` under a PodDisruptionBudget; once healthy, the node one of its pods runs on."""
    from sandbox.demo import deployment
    from tests.support.waiting import wait_until

    with _api(sandbox) as api:
        k8s.AppsV1Api(api).create_namespaced_deployment(
            "shop", deployment(name, replicas, f"registry.local/shop/{name}:1.0.0", "64Mi", 8080))
        k8s.PolicyV1Api(api).create_namespaced_pod_disruption_budget("shop", {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}}})
        wait_until(lambda: sandbox.is_healthy("shop", name), timeout=timeout)
        pods = k8s.CoreV1Api(api).list_namespaced_pod("shop", label_selector=f"app={name}").items
    bound = [str(p.spec.node_name) for p in pods if p.spec is not None and p.spec.node_name]
    nodes = sorted(n for n in bound if n != "sandbox-node-1")
    return nodes[0]


def scale(sandbox: SandboxCluster, name: str, replicas: int) -> None:
    with _api(sandbox) as api:
        k8s.AppsV1Api(api).patch_namespaced_deployment_scale(name, "shop", {"spec": {"replicas": replicas}})
