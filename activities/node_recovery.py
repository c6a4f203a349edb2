"""Node recovery on Kubernetes: read the node, cordon it under an owner, drain it through the Eviction API.

Every write is guarded by the read resourceVersion and idempotent: a cordon already ours is left as
it is, an uncordon touches only a node whose owner annotation names the same workflow (never a
cordon a person made), an eviction of a pod already gone counts as done. Pods are only ever evicted,
never deleted, so PodDisruptionBudgets hold; a refusal (429) is retried until the drain's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, PolicyV1Api
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import Obj, fail
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.k8s_names import InvalidName, require_object_name
from zerotouch.node_recovery_models import (
    OWNER_ANNOTATION,
    CordonRequest,
    DrainRequest,
    DrainResult,
    NodeChange,
    NodeReadiness,
    NodeReadyWait,
    NodeTarget,
    NodeView,
    PodOnNode,
    WorkloadsHealth,
    WorkloadWait,
)

CONFLICT_ATTEMPTS = 3


def _node_name(node: str) -> str:
    try:
        return require_object_name(node, "node")
    except InvalidName as error:
        raise fail(str(error), errors.INVALID_TARGET) from None


def is_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _owner_of(meta: Obj) -> tuple[str, str]:
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
    return (str(refs[0].get("kind", "")), str(refs[0].get("name", ""))) if refs else ("", "")


def _pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _selects(pdb: Obj, labels: dict[str, str]) -> bool:
    wanted = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


class NodeRecoveryActivities:
    """The Kubernetes side of NodeRecoveryWorkflow (sync: run on the worker's thread pool)."""

    def __init__(self, *, api_client: ApiClient, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._core = CoreV1Api(api_client)
        self._apps = AppsV1Api(api_client)
        self._policy = PolicyV1Api(api_client)
        self._call = KubeCaller(request_timeout)

    def _pods_on(self, node: str) -> list[Obj]:
        listed = self._call(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}",
                            what=f"pods on node {node}")
        return [p for p in listed.get("items") or [] if not p["metadata"].get("deletionTimestamp")]

    @activity.defn(name=names.READ_NODE)
    @keeps_alive
    def read_node(self, target: NodeTarget) -> NodeView:
        """kubectl get node NODE; kubectl get pods -A --field-selector spec.nodeName=NODE; kubectl get pdb -A"""
        node = _node_name(target.node)
        nodes = self._call(self._core.list_node, what="nodes").get("items") or []
        schedulable = sorted(n["metadata"]["name"] for n in nodes
                             if is_ready(n) and not (n.get("spec") or {}).get("unschedulable"))
        found = next((n for n in nodes if n["metadata"]["name"] == node), None)
        if found is None:
            return NodeView(node=node, exists=False, total_nodes=len(nodes), schedulable=schedulable)
        pdbs = self._call(self._policy.list_pod_disruption_budget_for_all_namespaces,
                          what="PodDisruptionBudgets").get("items") or []
        pods = []
        for pod in self._pods_on(node):
            meta = pod["metadata"]
            kind, owner = _owner_of(meta)
            labels = meta.get("labels") or {}
            pdb = next((b for b in pdbs if b["metadata"]["namespace"] == meta["namespace"] and _selects(b, labels)),
                       None)
            pods.append(PodOnNode(
                namespace=meta["namespace"], name=meta["name"], owner=f"{kind}/{owner}" if kind else "",
                daemonset=kind == "DaemonSet", ready=_pod_ready(pod), pdb=pdb["metadata"]["name"] if pdb else "",
                disruptions_allowed=(pdb.get("status") or {}).get("disruptionsAllowed") if pdb else None))
        annotations = found["metadata"].get("annotations") or {}
        return NodeView(node=node, ready=is_ready(found), unschedulable=bool(found["spec"].get("unschedulable")),
                        owner=str(annotations.get(OWNER_ANNOTATION, "")), pods=pods, total_nodes=len(nodes),
                        schedulable=schedulable)

    @activity.defn(name=names.CORDON_NODE)
    @keeps_alive
    def cordon_node(self, request: CordonRequest) -> NodeChange:
        """kubectl cordon NODE (and annotate its owner) / kubectl uncordon NODE (only if we own the cordon)"""
        node = _node_name(request.node)
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return self._set_cordon(node, request)
            except ApplicationError as error:
                if error.type != errors.CONFLICT or attempt == CONFLICT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _set_cordon(self, node: str, request: CordonRequest) -> NodeChange:
        current = self._call(self._core.read_node, node, what=f"node {node}")
        meta = current["metadata"]
        owner = str((meta.get("annotations") or {}).get(OWNER_ANNOTATION, ""))
        cordoned = bool((current.get("spec") or {}).get("unschedulable"))
        before = {"unschedulable": str(cordoned).lower(), "owner": owner or "-",
                  "ready": str(is_ready(current)).lower()}

        def unchanged(detail: str) -> NodeChange:
            return NodeChange(node=node, changed=False, before=before, after=before, detail=detail)

        if request.cordon:
            if cordoned and owner == request.owner:
                return unchanged(f"node {node} is already cordoned by {owner}")
            if cordoned:
                raise fail(f"node {node} is already cordoned by {owner or 'someone (no owner annotation)'}; "
                           "zerotouch leaves a cordon it does not own alone", errors.INVALID_TARGET)
            patch: Obj = {"metadata": {"resourceVersion": meta["resourceVersion"],
                                       "annotations": {OWNER_ANNOTATION: request.owner}},
                          "spec": {"unschedulable": True}}
        else:
            if owner != request.owner:
                return unchanged(f"node {node} is not cordoned by {request.owner} (owner: {owner or 'none'}); "
                                 "left as it is")
            patch = {"metadata": {"resourceVersion": meta["resourceVersion"], "annotations": {OWNER_ANNOTATION: None}},
                     "spec": {"unschedulable": False}}
        self._call(self._core.patch_node, node, patch, what=f"node {node}")
        after = {**before, "unschedulable": str(request.cordon).lower(),
                 "owner": request.owner if request.cordon else "-"}
        verb = "cordoned" if request.cordon else "uncordoned"
        activity.logger.info("node %s %s (owner %s)", node, verb, request.owner)
        return NodeChange(node=node, changed=True, before=before, after=after, detail=f"node {node} {verb}")

    @activity.defn(name=names.DRAIN_NODE)
    def drain_node(self, request: DrainRequest) -> DrainResult:
        """kubectl drain NODE --ignore-daemonsets --delete-emptydir-data, retrying PDB refusals until the deadline"""
        node = _node_name(request.node)
        evicted: list[str] = []
        refusals = 0
        while True:
            activity.heartbeat(len(evicted))
            pods = [p for p in self._pods_on(node) if _owner_of(p["metadata"])[0] != "DaemonSet"]
            refused: dict[str, str] = {}
            for pod in pods:
                meta = pod["metadata"]
                ref = f"{meta['namespace']}/{meta['name']}"
                outcome = self._evict(meta["namespace"], meta["name"])
                if outcome is None:
                    evicted.append(ref)
                else:
                    refused[ref] = outcome
                activity.heartbeat(len(evicted))
            refusals += len(refused)
            if not refused and not self._left(node):
                return DrainResult(drained=True, evicted=evicted, refusals=refusals,
                                   detail=f"{len(evicted)} pod(s) evicted from {node}")
            if datetime.now(UTC) >= request.deadline:
                left = self._left(node)
                return DrainResult(drained=False, evicted=evicted, remaining=left, refusals=refusals,
                                   refused_by={p: b for p, b in refused.items() if p in left},
                                   detail=f"{len(left)} pod(s) still on {node} at the drain's deadline")
            time.sleep(min(request.retry_seconds,
                           max(0.05, (request.deadline - datetime.now(UTC)).total_seconds())) if refused else 0.05)

    def _left(self, node: str) -> list[str]:
        return [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in self._pods_on(node)
                if _owner_of(p["metadata"])[0] != "DaemonSet"]

    def _evict(self, namespace: str, name: str) -> str | None:
        """None once evicted (or already gone); otherwise why the API refused for now (429)."""
        body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        try:
            self._call(self._core.create_namespaced_pod_eviction, name, namespace, body, what=f"pod {namespace}/{name}")
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return None
            if error.type == errors.TOO_MANY_REQUESTS:
                return str(error.message)
            raise
        activity.logger.info("evicted pod %s/%s", namespace, name)
        return None

    @activity.defn(name=names.WAIT_FOR_WORKLOADS)
    def wait_for_workloads(self, wait: WorkloadWait) -> WorkloadsHealth:
        """Until every evicted pod's ReplicaSet or StatefulSet has all its pods bound elsewhere and Ready"""
        node = _node_name(wait.node)
        while True:
            nodes = self._call(self._core.list_node, what="nodes").get("items") or []
            ready_nodes = {n["metadata"]["name"] for n in nodes if is_ready(n)}
            pods: dict[str, list[Obj]] = {}
            waiting = [w for w in wait.workloads if not self._rescheduled(w, node, ready_nodes, pods)]
            activity.heartbeat(len(waiting))
            if not waiting:
                return WorkloadsHealth(healthy=True, detail=f"{len(wait.workloads)} workload(s) healthy off {node}")
            if datetime.now(UTC) >= wait.deadline:
                return WorkloadsHealth(healthy=False, waiting=waiting,
                                       detail=f"not healthy elsewhere in time: {', '.join(waiting)}")
            time.sleep(wait.poll_seconds)

    def _rescheduled(self, workload: str, node: str, ready_nodes: set[str], pods: dict[str, list[Obj]]) -> bool:
        """All replicas exist, none on `node`, and every one on a Ready node is Ready.

        A replica stuck on another failed node does not hold this recovery up: that node's pods are its
        own recovery's business, and waiting on them would deadlock two recoveries.
        """
        namespace, kind, name = workload.split("/", 2)
        read: dict[str, Callable[..., Any]] = {"ReplicaSet": self._apps.read_namespaced_replica_set,
                                               "StatefulSet": self._apps.read_namespaced_stateful_set}
        if kind not in read:
            return True  # Jobs and bare pods: nothing brings them back elsewhere to wait for
        try:
            obj = self._call(read[kind], name, namespace, what=f"{kind} {namespace}/{name}")
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return True  # deleted meanwhile: nothing left to wait for
            raise
        if namespace not in pods:
            listed = self._call(self._core.list_namespaced_pod, namespace, what=f"pods in {namespace}")
            pods[namespace] = [p for p in listed.get("items") or [] if not p["metadata"].get("deletionTimestamp")]
        mine = [p for p in pods[namespace] if _owner_of(p["metadata"]) == (kind, name)]
        wanted = int((obj.get("spec") or {}).get("replicas", 1))
        bound = [(p.get("spec") or {}).get("nodeName", "") for p in mine]
        return (len(mine) >= wanted and all(b and b != node for b in bound)
                and all(_pod_ready(p) for p, b in zip(mine, bound, strict=True) if b in ready_nodes))

    @activity.defn(name=names.WAIT_FOR_NODE_READY)
    def wait_for_node_ready(self, wait: NodeReadyWait) -> NodeReadiness:
        """Until kubectl get node NODE says Ready, or the deadline"""
        node = _node_name(wait.node)
        while True:
            try:
                current: Obj | None = self._call(self._core.read_node, node, what=f"node {node}")
            except ApplicationError as error:
                if error.type != errors.NOT_FOUND:
                    raise
                current = None  # a replaced node may be gone for a while
            activity.heartbeat()
            if current is not None and is_ready(current):
                return NodeReadiness(ready=True, detail=f"node {node} is Ready")
            if datetime.now(UTC) >= wait.deadline:
                return NodeReadiness(ready=False, detail=f"node {node} is not Ready by the deadline")
            time.sleep(wait.poll_seconds)
