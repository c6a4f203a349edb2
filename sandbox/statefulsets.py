"""apps/v1 StatefulSets: pods `<name>-<ordinal>` with stable claims, and their status.

Like the Deployment controller here, updates are not rolling: every pod whose
`controller-revision-hash` is not the update revision is replaced in the same
tick, which is enough for `rollout restart` and `rollout status` to behave.
Claims from volumeClaimTemplates (`<claim>-<name>-<ordinal>`) are created
Bound and, as with the default Retain policy, never deleted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from . import pods, templates
from .faults import FaultManager
from .ownership import pods_of
from .resources import get_type
from .scheduling import Scheduler, kubelet_status
from .store import Obj, Store

STATEFULSETS = get_type("apps", "statefulsets")
PODS = get_type("", "pods")
PVCS = get_type("", "persistentvolumeclaims")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def update_revision(sts: Obj) -> str:
    return f"{sts['metadata']['name']}-{templates.template_hash(sts['spec']['template'])}"


def ordinal(sts: Obj, pod: Obj) -> int:
    """The pod's ordinal, or -1 when its name is not `<set>-<n>`."""
    suffix = pod["metadata"]["name"][len(sts["metadata"]["name"]) + 1:]
    return int(suffix) if suffix.isdigit() else -1


class StatefulSetController:
    def __init__(self, store: Store, faults: FaultManager, *, next_ip: Callable[[], str],
                 scheduler: Scheduler) -> None:
        self.store, self.faults, self.next_ip = store, faults, next_ip
        self.scheduler = scheduler

    def sync_all(self) -> None:
        for sts in self.store.list(STATEFULSETS):
            self.sync(sts)

    def sync(self, sts: Obj) -> None:
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        replicas = int(sts["spec"].get("replicas", 1))
        revision = update_revision(sts)
        present: set[int] = set()
        for pod in pods_of(self.store, sts):
            index = ordinal(sts, pod)
            labels = pod["metadata"].get("labels") or {}
            if index < 0 or index >= replicas or labels.get(templates.REVISION_LABEL) != revision:
                self.store.delete(PODS, ns, pod["metadata"]["name"])
                continue
            present.add(index)
            condition = self.faults.pod_condition(ns, name, pod, "StatefulSet")
            self.store.update(PODS, kubelet_status(self.store, pod, condition),
                              check_version=False)
        for index in range(replicas):
            self._ensure_claims(sts, index)
            if index not in present:
                node = self.scheduler.pick(pods_of(self.store, sts))
                self.store.create(PODS, self._new_pod(sts, index, revision, node))
        self._write_status(sts, revision)

    def _new_pod(self, sts: Obj, index: int, revision: str, node: str | None) -> Obj:
        name = f"{sts['metadata']['name']}-{index}"
        pod = pods.owned_pod(sts, "apps/v1", sts["spec"]["template"], name, node, self.next_ip(),
                             {templates.REVISION_LABEL: revision, POD_NAME_LABEL: name,
                              POD_INDEX_LABEL: str(index)})
        pod["spec"]["hostname"] = name
        if sts["spec"].get("serviceName"):
            pod["spec"]["subdomain"] = sts["spec"]["serviceName"]
        volumes = pod["spec"].setdefault("volumes", [])
        for claim in sts["spec"].get("volumeClaimTemplates") or []:
            claim_name = claim["metadata"]["name"]
            volumes.append({"name": claim_name, "persistentVolumeClaim": {
                "claimName": f"{claim_name}-{name}"}})
        return pod

    def _ensure_claims(self, sts: Obj, index: int) -> None:
        ns = sts["metadata"]["namespace"]
        pod_name = f"{sts['metadata']['name']}-{index}"
        for claim in sts["spec"].get("volumeClaimTemplates") or []:
            name = f"{claim['metadata']['name']}-{pod_name}"
            if self.store.get(PVCS, ns, name) is None:
                self.store.create(PVCS, bound_claim(claim, ns, name,
                                                    sts["spec"]["selector"].get("matchLabels")))

    def _write_status(self, sts: Obj, revision: str) -> None:
        current = pods_of(self.store, sts)
        old = sts.get("status") or {}
        ready = sum(1 for p in current if pods.is_ready(p))
        updated = sum(1 for p in current
                      if (p["metadata"].get("labels") or {}).get(templates.REVISION_LABEL)
                      == revision)
        current_revision = old.get("currentRevision") or revision
        # As the real controller: the update revision becomes current once every pod runs it, ready.
        if updated == len(current) == ready:
            current_revision = revision
        at_current = sum(1 for p in current
                         if (p["metadata"].get("labels") or {}).get(templates.REVISION_LABEL)
                         == current_revision)
        status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(current), "readyReplicas": ready, "currentReplicas": at_current,
            "updatedReplicas": updated, "availableReplicas": ready,
            "currentRevision": current_revision, "updateRevision": revision,
            "collisionCount": 0,
        }
        status = {k: v for k, v in status.items()
                  if v != 0 or k in ("replicas", "availableReplicas", "collisionCount")}
        if status != old:
            fresh = copy.deepcopy(self.store.require(STATEFULSETS, sts["metadata"]["namespace"],
                                                     sts["metadata"]["name"]))
            fresh["status"] = status
            self.store.update(STATEFULSETS, fresh, check_version=False)


def bound_claim(template: Obj, namespace: str, name: str,
                labels: dict[str, str] | None) -> Obj:
    """A PVC as a dynamic provisioner leaves it: Bound, with the capacity it asked for."""
    spec = copy.deepcopy(template.get("spec") or {})
    spec.setdefault("accessModes", ["ReadWriteOnce"])
    spec.setdefault("storageClassName", "standard")
    spec.setdefault("volumeMode", "Filesystem")
    spec["volumeName"] = f"pvc-{pods.random_suffix(8)}"
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    return {
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                                **(labels or {})}},
        "spec": spec,
        "status": {"phase": "Bound", "accessModes": list(spec["accessModes"]),
                   "capacity": {"storage": storage}},
    }
