"""The `delete_pod` drill on a Kubernetes API (the sandbox's or a real cluster's): one pod of one
Deployment deleted, and the Deployment's readiness read back.

The only fault a drill may inject on a real cluster, so it is bounded three ways before anything is
written: the namespace must be one the worker's own policy allows (the workflow's input is not
trusted for that: a drill can be pinned in it), the selector must match the pods of exactly one
workload, the drill's target Deployment, and that Deployment must have every desired replica Ready.

A retried activity must not delete a second pod. The chosen pod travels in the activity's heartbeat
details and carries an annotation naming the drill before it is deleted; a retry that finds neither
(its heartbeat lost, the pod already gone) but a pod of the workload created since the injection was
first scheduled takes that replacement as evidence of its own earlier delete, and deletes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from temporalio.exceptions import ApplicationError

from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import Obj, fail, selector_string
from zerotouch import activity_errors as errors
from zerotouch.drills import Drill, DrillsPolicy
from zerotouch.k8s_labels import selector_query

MARK = "zerotouch.io/drill"  # annotation: the drill (its workflow ID) that chose this pod
MERGE_PATCH = "application/merge-patch+json"  # a null value removes the annotation


@dataclass(frozen=True)
class PodChoice:
    """The pod a drill deletes; `replacement` when an earlier attempt's delete is inferred from it."""

    name: str
    uid: str
    workload: str
    replacement: bool = False
    created: float = 0.0  # epoch seconds: a replacement's creation stands in for the lost delete's time

    def details(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, details: object) -> PodChoice | None:
        """The choice an earlier attempt heartbeated, if any."""
        if isinstance(details, dict) and details.get("name") and details.get("uid"):
            return cls(**{k: details[k] for k in ("name", "uid", "workload", "replacement", "created")
                          if k in details})
        return None


def _created(pod: Obj) -> datetime:
    return datetime.fromisoformat(str(pod["metadata"]["creationTimestamp"]).replace("Z", "+00:00"))


def pod_ready(pod: Obj) -> bool:
    """Running, Ready and not on its way out (a deleting pod keeps Ready until its kubelet stops it)."""
    status = pod.get("status") or {}
    return (not pod["metadata"].get("deletionTimestamp") and status.get("phase") == "Running"
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []))


def _controller(obj: Obj) -> tuple[str, str] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind")), str(ref.get("name"))
    return None


class DrillPods:
    """Chooses, deletes and watches a drill's pod through the official client (sync: call on a thread)."""

    def __init__(self, *, api_client: Callable[[], ApiClient], drills: Callable[[], DrillsPolicy], on_sandbox: bool,
                 request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._api_client = api_client
        self._drills = drills
        self._on_sandbox = on_sandbox
        self._call = KubeCaller(request_timeout)
        self._apis: tuple[CoreV1Api, AppsV1Api] | None = None
        self._lock = threading.Lock()

    def _api(self) -> tuple[CoreV1Api, AppsV1Api]:
        with self._lock:  # built on first use: a worker that never drills needs no Kubernetes credentials
            if self._apis is None:
                try:
                    client = self._api_client()
                except Exception as error:  # no credentials here (workers/clients.py says which were tried)
                    raise fail(f"delete_pod drills need Kubernetes access from this worker: {error}",
                               errors.FORBIDDEN) from None
                self._apis = (CoreV1Api(client), AppsV1Api(client))
            return self._apis

    def allowed(self, drill: Drill) -> None:
        """Refuse a namespace the worker's own policy does not list (the sandbox: any, unless it lists some)."""
        policy = self._drills()
        if drill.namespace in policy.namespaces:
            return
        if not policy.namespaces and policy.environment == "sandbox" and self._on_sandbox:
            return
        where = ("this worker talks to a real cluster" if not self._on_sandbox or policy.environment == "cluster"
                 else "the policy lists drills.namespaces")
        raise fail(f"drill {drill.name}: namespace {drill.namespace!r} is not in drills.namespaces "
                   f"({', '.join(policy.namespaces) or 'none'}) and {where}; add it there to drill it",
                   errors.INVALID_TARGET)

    def _pods(self, drill: Drill) -> list[Obj]:
        core, _ = self._api()
        found = self._call(core.list_namespaced_pod, drill.namespace, label_selector=selector_query(drill.selector),
                           what=f"pods of drill {drill.name}")
        return list(found.get("items") or [])

    def _deployment(self, drill: Drill) -> Obj:
        _, apps = self._api()
        return self._call(apps.read_namespaced_deployment, drill.target_name, drill.namespace,
                          what=f"deployment {drill.namespace}/{drill.target_name}")

    def _workload(self, pod: Obj, replicasets: dict[str, Obj]) -> str:
        """`deployment web` for a Deployment's pod; the owner's kind and name (or `pod <name>`) else."""
        owner = _controller(pod)
        if owner is None:
            return f"pod {pod['metadata']['name']}"
        kind, name = owner
        if kind == "ReplicaSet":
            if name not in replicasets:
                _, apps = self._api()
                replicasets[name] = self._call(apps.read_namespaced_replica_set, name, pod["metadata"]["namespace"],
                                               what=f"replicaset {pod['metadata']['namespace']}/{name}")
            kind, name = _controller(replicasets[name]) or (kind, name)
        return f"{kind.lower()} {name}"

    def choose(self, drill: Drill, *, drill_id: str, since: datetime | None) -> PodChoice:
        """One Ready pod of the drill's Deployment, the oldest (ties by name); `since`: a retry's first start."""
        self.allowed(drill)
        query, where = selector_query(drill.selector), f"drill {drill.name}"
        pods = self._pods(drill)
        if not pods:
            raise fail(f"{where}: no pod in namespace {drill.namespace} matches {query}; "
                       f"check `kubectl get pods -n {drill.namespace} -l {query}`", errors.INVALID_TARGET)
        replicasets: dict[str, Obj] = {}
        workloads = sorted({self._workload(pod, replicasets) for pod in pods})
        if len(workloads) > 1:
            raise fail(f"{where}: {query} matches pods of {len(workloads)} workloads ({', '.join(workloads)}); "
                       "a drill deletes a pod of one workload only: narrow the selector", errors.INVALID_TARGET)
        workload = workloads[0]
        if workload != f"deployment {drill.target_name}":
            raise fail(f"{where}: {query} matches pods of {workload}, not of the target deployment {drill.target}; "
                       "delete_pod drills take a Deployment's pods", errors.INVALID_TARGET)
        marked = sorted((p for p in pods if (p["metadata"].get("annotations") or {}).get(MARK) == drill_id),
                        key=lambda p: str(p["metadata"]["name"]))
        if marked:  # an earlier attempt chose it (and may have deleted it: a deleting pod is still listed)
            return PodChoice(marked[0]["metadata"]["name"], marked[0]["metadata"]["uid"], workload)
        if since is not None:
            # creationTimestamp has whole seconds: a pod of the first attempt's second counts as new,
            # so doubt ends in deleting nothing.
            newer = [p for p in pods if _created(p) >= since.replace(microsecond=0)]
            if newer:
                newest = max(newer, key=lambda p: (_created(p), str(p["metadata"]["name"])))
                return PodChoice(newest["metadata"]["name"], newest["metadata"]["uid"], workload, replacement=True,
                                 created=_created(newest).timestamp())
        healthy, state = self.recovered(drill)
        ready = sorted((p for p in pods if pod_ready(p)), key=lambda p: (_created(p), str(p["metadata"]["name"])))
        if not healthy or not ready:
            raise fail(f"{where}: {state}; a drill on a workload that is not healthy would deepen an outage: "
                       "run it once every replica is Ready", errors.INVALID_TARGET)
        return PodChoice(ready[0]["metadata"]["name"], ready[0]["metadata"]["uid"], workload)

    def delete(self, drill: Drill, choice: PodChoice, *, drill_id: str) -> bool:
        """Mark the chosen pod with the drill, then delete it (that pod only: its UID is a precondition).
        False when it is already gone (an earlier attempt's delete) or was only a replacement."""
        self.allowed(drill)
        if choice.replacement:
            return False
        core, _ = self._api()
        what = f"pod {drill.namespace}/{choice.name}"
        try:
            self._call(core.patch_namespaced_pod, choice.name, drill.namespace,
                       {"metadata": {"uid": choice.uid, "annotations": {MARK: drill_id}}},
                       what=what, _content_type=MERGE_PATCH)
            self._call(core.delete_namespaced_pod, choice.name, drill.namespace,
                       body={"preconditions": {"uid": choice.uid}}, what=what)
        except ApplicationError as error:
            if error.type in (errors.NOT_FOUND, errors.CONFLICT):  # gone, or a new pod under the old name
                return False
            raise
        return True

    def unmark(self, drill: Drill, *, drill_id: str) -> int:
        """Take the drill's annotation off any pod it marked but did not delete (a drill cancelled midway)."""
        if not drill.selector:
            return 0
        try:
            self.allowed(drill)
        except ApplicationError:
            return 0  # never allowed here: nothing was marked
        core, _ = self._api()
        cleared = 0
        for pod in self._pods(drill):
            meta = pod["metadata"]
            if (meta.get("annotations") or {}).get(MARK) == drill_id and not meta.get("deletionTimestamp"):
                try:
                    self._call(core.patch_namespaced_pod, meta["name"], drill.namespace,
                               {"metadata": {"annotations": {MARK: None}}},
                               what=f"pod {drill.namespace}/{meta['name']}", _content_type=MERGE_PATCH)
                except ApplicationError as error:
                    if error.type != errors.NOT_FOUND:
                        raise
                    continue
                cleared += 1
        return cleared

    def recovered(self, drill: Drill) -> tuple[bool, str]:
        """Every desired replica Ready again, by the Deployment's status and by its pods themselves."""
        deploy = self._deployment(drill)
        spec, status, meta = deploy.get("spec") or {}, deploy.get("status") or {}, deploy["metadata"]
        desired = int(spec.get("replicas", 1))
        core, _ = self._api()
        pods = self._call(core.list_namespaced_pod, drill.namespace,
                          label_selector=selector_string(spec.get("selector")),
                          what=f"pods of deployment {drill.target}").get("items") or []
        ready = sum(1 for pod in pods if pod_ready(pod))
        live = sum(1 for pod in pods if not pod["metadata"].get("deletionTimestamp"))  # a deleted pod may linger
        # Reconciled and not mid-rollout: more pods than desired would make "all Ready" come too early.
        current = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
        steady = current and int(status.get("replicas", 0)) == desired == live
        done = steady and int(status.get("readyReplicas", 0)) >= desired and ready >= desired
        return done, f"deployment {drill.target}: {ready}/{desired} pods Ready ({live} in all)"
