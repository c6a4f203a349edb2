"""Owner resolution: from what an alert names (a pod, a Job, an HPA) to the workload that owns it.

Real alerts name pods (``KubePodCrashLooping``: ``namespace``, ``pod``); runbooks act on the
Deployment that owns them. The activity follows the controller owner references as the garbage
collector does (Pod → ReplicaSet → Deployment, Pod → StatefulSet / DaemonSet, Pod → Job → CronJob),
reading only what it must (RBAC: ``get`` on pods, replicasets, jobs, horizontalpodautoscalers,
and on the workload kinds a pod that is already gone is guessed to belong to).

A pod that no longer exists (replaced since the alert fired) is resolved through the owner its
name points to, if that workload exists; otherwise the answer says why there is none.
"""

from __future__ import annotations

from collections.abc import Callable

from kubernetes.client import ApiClient, AppsV1Api, AutoscalingV1Api, BatchV1Api, CoreV1Api
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import Obj
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.workloads import (
    LABEL_OF_KIND,
    WorkloadKind,
    WorkloadQuery,
    WorkloadRef,
    named_workload,
    owner_from_pod_name,
)

# Reads one object by kind; None when it does not exist.
Reader = Callable[[WorkloadKind, str, str], Obj | None]

# Kinds a pod's controller may be that zerotouch follows further or stops at.
_FOLLOWED: set[str] = {"ReplicaSet", "Job"}
_WORKLOADS: set[str] = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "ReplicaSet", "Job"}
# A gone pod's name pattern, and the kinds it may belong to, tried in order.
_CANDIDATES: dict[str, tuple[WorkloadKind, ...]] = {
    "Deployment": ("Deployment",),
    "StatefulSet": ("StatefulSet",),
    "DaemonSet": ("DaemonSet", "Job"),
    "CronJob": ("CronJob",),
}
# Every kind the activity reads (get only): deploy/kubernetes/rbac.yaml grants exactly these.
READ_KINDS: tuple[WorkloadKind, ...] = (
    "Pod", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "HorizontalPodAutoscaler",
)
_MAX_HOPS = 4  # Pod → ReplicaSet → Deployment is the longest chain Kubernetes builds


def _controller(obj: Obj) -> tuple[str, str] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None


def _hop(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()} {namespace}/{name}"


class WorkloadResolver:
    """The resolution rules, over any object reader (the API in the activity, a dict in unit tests)."""

    def __init__(self, read: Reader) -> None:
        self._read = read

    def resolve(self, query: WorkloadQuery) -> WorkloadRef:
        labels = query.labels
        namespace = labels.get("namespace", "")
        if not namespace:
            node = labels.get("node")
            if node:
                return WorkloadRef(kind="Node", name=node, path=[f"label node={node}"])
            return WorkloadRef(reason="the alert names no namespace, pod or workload")
        named = named_workload(labels)
        if named is not None:
            name, kind = named
            return self._from_named(kind, namespace, name)
        pod = labels.get("pod")
        if pod:
            return self._from_pod(namespace, pod)
        return WorkloadRef(namespace=namespace, reason=f"the alert names no pod or workload in {namespace}")

    def _from_named(self, kind: WorkloadKind, namespace: str, name: str) -> WorkloadRef:
        path = [f"label {LABEL_OF_KIND[kind]}={name}"]
        if kind == "Job":
            return self._follow("Job", namespace, name, path)
        if kind == "HorizontalPodAutoscaler":
            hpa = self._read(kind, namespace, name)
            if hpa is None:
                return WorkloadRef(namespace=namespace, path=path, reason=f"hpa {namespace}/{name} does not exist")
            target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            target_kind, target_name = str(target.get("kind", "")), str(target.get("name", ""))
            path.append(_hop("HorizontalPodAutoscaler", namespace, name))
            if target_kind in _WORKLOADS and target_name:
                return WorkloadRef(kind=target_kind, namespace=namespace, name=target_name,  # type: ignore[arg-type]
                                   path=path)
            return WorkloadRef(namespace=namespace, path=path, reason=f"it scales {target_kind or 'nothing'}")
        # The alert came from the workload's own series: its name is the answer.
        return WorkloadRef(kind=kind, namespace=namespace, name=name, path=path)

    def _from_pod(self, namespace: str, pod_name: str) -> WorkloadRef:
        pod = self._read("Pod", namespace, pod_name)
        if pod is None:
            return self._from_gone_pod(namespace, pod_name)
        owner = _controller(pod)
        path = [_hop("Pod", namespace, pod_name)]
        if owner is None:
            return WorkloadRef(kind="Pod", namespace=namespace, name=pod_name, path=path)
        return self._follow(owner[0], namespace, owner[1], path)

    def _follow(self, kind: str, namespace: str, name: str, path: list[str]) -> WorkloadRef:
        """Walk controller references up from ``kind/name`` to the top-most workload."""
        for _ in range(_MAX_HOPS):
            if kind not in _FOLLOWED:
                break
            obj = self._read(kind, namespace, name)  # type: ignore[arg-type]
            if obj is None:
                return WorkloadRef(namespace=namespace, path=path, reason=f"{_hop(kind, namespace, name)} is gone")
            owner = _controller(obj)
            if owner is None:
                break
            path = [*path, _hop(kind, namespace, name)]
            kind, name = owner
        if kind not in _WORKLOADS:
            return WorkloadRef(namespace=namespace, path=[*path, _hop(kind, namespace, name)],
                               reason=f"owned by a {kind}, which zerotouch does not manage")
        return WorkloadRef(kind=kind, namespace=namespace, name=name, path=path)  # type: ignore[arg-type]

    def _from_gone_pod(self, namespace: str, pod_name: str) -> WorkloadRef:
        path = [f"{_hop('Pod', namespace, pod_name)} (gone)"]
        guess = owner_from_pod_name(pod_name)
        if guess is None:
            return WorkloadRef(namespace=namespace, path=path,
                               reason="the pod no longer exists and its name is not one a controller makes")
        owner, pattern = guess
        for kind in _CANDIDATES[pattern]:
            if self._read(kind, namespace, owner) is not None:
                return WorkloadRef(kind=kind, namespace=namespace, name=owner, path=[*path, "by its name"])
        kinds = " or ".join(k.lower() for k in _CANDIDATES[pattern])
        return WorkloadRef(namespace=namespace, path=path,
                           reason=f"the pod no longer exists and no {kinds} {namespace}/{owner} does")


class WorkloadActivities:
    """`resolve_workload` through the official client (sync: runs on the worker's thread pool)."""

    def __init__(self, *, api_client: ApiClient, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._call = KubeCaller(request_timeout)
        core, apps, batch = CoreV1Api(api_client), AppsV1Api(api_client), BatchV1Api(api_client)
        self._readers: dict[WorkloadKind, Callable[..., object]] = {
            "Pod": core.read_namespaced_pod,
            "ReplicaSet": apps.read_namespaced_replica_set,
            "Deployment": apps.read_namespaced_deployment,
            "StatefulSet": apps.read_namespaced_stateful_set,
            "DaemonSet": apps.read_namespaced_daemon_set,
            "Job": batch.read_namespaced_job,
            "CronJob": batch.read_namespaced_cron_job,
            "HorizontalPodAutoscaler": AutoscalingV1Api(api_client).read_namespaced_horizontal_pod_autoscaler,
        }
        assert set(self._readers) == set(READ_KINDS)

    def _read(self, kind: WorkloadKind, namespace: str, name: str) -> Obj | None:
        try:
            return self._call(self._readers[kind], name, namespace, what=_hop(kind, namespace, name))
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return None
            raise

    @activity.defn(name=names.RESOLVE_WORKLOAD)
    def resolve_workload(self, query: WorkloadQuery) -> WorkloadRef:
        """The workload the alert's labels lead to (labels are untrusted: names are checked first)."""
        try:
            for label, value in query.labels.items():
                if label == "namespace":
                    require_namespace(value)
                else:
                    require_object_name(value, label)
        except InvalidName as error:
            return WorkloadRef(reason=str(error))
        return WorkloadResolver(self._read).resolve(query)
