"""The control loop: Deployments -> ReplicaSets -> Pods, StatefulSets and DaemonSets -> Pods,
CronJobs -> Jobs -> Pods, PDB status.

A deliberately simplified kube-controller-manager. Rollouts are not rolling:
the current ReplicaSet is scaled to spec.replicas and every older one to 0
in the same tick, which keeps tests fast while still producing the objects
and revision annotations kubectl's `rollout undo` reads.
"""

from __future__ import annotations

import copy
from typing import Any

from . import budgets, job_pods, jobs, pods, templates
from .cronjobs import CRONJOBS, CronJobController
from .daemonsets import DAEMONSETS, DaemonSetController
from .deployment_conditions import conditions
from .faults import FaultManager
from .ownership import controlled_by, ip_allocator, pods_of
from .resources import get_type
from .scheduling import Scheduler, kubelet_status
from .statefulsets import STATEFULSETS, StatefulSetController
from .store import Obj, Store

REVISION = "deployment.kubernetes.io/revision"
_SKIP_RS_ANNOTATIONS = {REVISION, "deployment.kubernetes.io/revision-history",
                        "kubectl.kubernetes.io/last-applied-configuration"}


DEPLOYMENTS = get_type("apps", "deployments")
REPLICASETS = get_type("apps", "replicasets")
PODS = get_type("", "pods")
NODES = get_type("", "nodes")
JOBS = get_type("batch", "jobs")
PDBS = get_type("policy", "poddisruptionbudgets")


def _revision(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


_owned_by = controlled_by


def _available(rs: Obj) -> int:
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


class Controller:
    def __init__(self, store: Store, faults: FaultManager) -> None:
        self.store = store
        self.faults = faults
        self.next_ip = ip_allocator()
        self.scheduler = Scheduler(store, next_ip=self.next_ip)
        self.cronjobs = CronJobController(store)
        self.statefulsets = StatefulSetController(store, faults, next_ip=self.next_ip,
                                                  scheduler=self.scheduler)
        self.daemonsets = DaemonSetController(store, faults, next_ip=self.next_ip)

    def tick(self) -> None:
        with self.store.lock:
            self.faults.resolve(self.store)
            for deploy in self.store.list(DEPLOYMENTS):
                self._sync_deployment(deploy)
            self._collect_garbage()
            for rs in self.store.list(REPLICASETS):
                self._sync_replicaset(rs)
            for deploy in self.store.list(DEPLOYMENTS):
                self._deployment_status(deploy)
            self.statefulsets.sync_all()
            self.daemonsets.sync_all()
            self._sync_bare_pods()
            for job in self.store.list(JOBS):
                self._sync_job(job)
            # After the Jobs, so a Job a CronJob creates starts on the next tick, as it would.
            self.cronjobs.sync_all()
            for pdb in self.store.list(PDBS):
                self._pdb_status(pdb)
            # Last, so a pod created this tick waits in ContainerCreating until the next.
            self.scheduler.bind_pending()

    # -- deployments -------------------------------------------------------
    def owned_replicasets(self, deploy: Obj) -> list[Obj]:
        ns = deploy["metadata"]["namespace"]
        return [rs for rs in self.store.list(REPLICASETS, ns) if _owned_by(rs, deploy)]

    def current_replicaset(self, deploy: Obj) -> Obj | None:
        want = templates.template_hash(deploy["spec"]["template"])
        for rs in self.owned_replicasets(deploy):
            if (rs["metadata"].get("labels") or {}).get(templates.HASH_LABEL) == want:
                return rs
        return None

    def _sync_deployment(self, deploy: Obj) -> None:
        meta = deploy["metadata"]
        owned = self.owned_replicasets(deploy)
        top = max((_revision(rs) for rs in owned), default=0)
        current = self.current_replicaset(deploy)
        if current is None:
            current = self.store.create(REPLICASETS, self._new_replicaset(deploy, top + 1))
        elif _revision(current) < top:
            # Going back to an older template reuses its ReplicaSet and gives
            # it the newest revision: this is what `rollout undo` relies on.
            current = self._set_revision(current, top + 1)
        desired = int(deploy["spec"].get("replicas", 1))
        # Old ReplicaSets keep their available pods until the new one's are available, as a rolling
        # update with maxUnavailable 0 does (25% of 3 replicas rounds down to 0): a release whose pods
        # never get ready leaves the old pods serving, and the rollout stalls at its progress deadline.
        # Old pods that are not available (crash-looping) cost no availability and go at once.
        rolled_out = _available(current) >= desired
        for rs in self.owned_replicasets(deploy):
            if rs["metadata"]["uid"] == current["metadata"]["uid"]:
                want = desired
            else:
                want = 0 if rolled_out else min(int(rs["spec"].get("replicas") or 0), _available(rs), desired)
            if rs["spec"].get("replicas") != want:
                updated = copy.deepcopy(rs)
                updated["spec"]["replicas"] = want
                self.store.update(REPLICASETS, updated, check_version=False)
        self._trim_history(deploy)
        revision = str(_revision(current))
        if (meta.get("annotations") or {}).get(REVISION) != revision:
            updated = copy.deepcopy(deploy)
            updated["metadata"].setdefault("annotations", {})[REVISION] = revision
            self.store.update(DEPLOYMENTS, updated, check_version=False)

    def _new_replicaset(self, deploy: Obj, revision: int) -> Obj:
        meta = deploy["metadata"]
        template = copy.deepcopy(deploy["spec"]["template"])
        tpl_hash = templates.template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[templates.HASH_LABEL] = tpl_hash
        selector = copy.deepcopy(deploy["spec"]["selector"])
        selector.setdefault("matchLabels", {})[templates.HASH_LABEL] = tpl_hash
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                       if k not in _SKIP_RS_ANNOTATIONS}
        annotations.update({
            REVISION: str(revision),
            "deployment.kubernetes.io/desired-replicas": str(deploy["spec"].get("replicas", 1)),
            "deployment.kubernetes.io/max-replicas": str(deploy["spec"].get("replicas", 1)),
        })
        return {
            "metadata": {
                "name": f"{meta['name']}-{tpl_hash}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                    "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
                }],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0, "observedGeneration": 1},
        }

    def _set_revision(self, rs: Obj, revision: int) -> Obj:
        updated = copy.deepcopy(rs)
        updated["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        return self.store.update(REPLICASETS, updated, check_version=False)

    def _trim_history(self, deploy: Obj) -> None:
        limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in self.owned_replicasets(deploy)
                if rs["spec"].get("replicas") == 0 and not self._pods_of(rs)]
        idle.sort(key=_revision)
        current = self.current_replicaset(deploy)
        idle = [rs for rs in idle if current is None or rs["metadata"]["uid"] != current["metadata"]["uid"]]
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, deploy: Obj) -> None:
        owned = self.owned_replicasets(deploy)
        current = self.current_replicaset(deploy)
        all_pods = [p for rs in owned for p in self._pods_of(rs)]
        updated_pods = self._pods_of(current) if current else []
        desired = int(deploy["spec"].get("replicas", 1))
        ready = sum(1 for p in all_pods if pods.is_ready(p))
        complete = len(updated_pods) == desired == len(all_pods) and ready == desired
        old = deploy.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": len(all_pods),
            "updatedReplicas": len(updated_pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, desired - ready),
        }
        for key in ("readyReplicas", "availableReplicas", "unavailableReplicas", "replicas",
                    "updatedReplicas"):
            if status[key] == 0:
                del status[key]  # omitempty, as the real API serialises
        rs_name = current["metadata"]["name"] if current else ""
        status["conditions"] = conditions(deploy, rs_name, ready, complete,
                                          self.store.clock.now())
        if status != old:
            updated = copy.deepcopy(deploy)
            updated["status"] = status
            self.store.update(DEPLOYMENTS, updated, check_version=False)

    # -- replicasets and pods ----------------------------------------------
    def _pods_of(self, rs: Obj) -> list[Obj]:
        return [p for p in self.store.list(PODS, rs["metadata"]["namespace"]) if _owned_by(p, rs)]

    def _deployment_name(self, rs: Obj) -> str:
        for ref in rs["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Deployment":
                return str(ref.get("name"))
        return ""

    def _sync_replicaset(self, rs: Obj) -> None:
        ns = rs["metadata"]["namespace"]
        want = int(rs["spec"].get("replicas", 0))
        owned = self._pods_of(rs)
        # Scale down the least useful pods first: not ready, then newest.
        owned.sort(key=lambda p: (pods.is_ready(p), p["metadata"]["creationTimestamp"]),
                   reverse=True)
        while len(owned) > want:
            victim = owned.pop()
            self.store.delete(PODS, ns, victim["metadata"]["name"])
        deployment = self._deployment_name(rs)
        for pod in owned:
            # Pods created last tick are "ContainerCreating"; from then on
            # their status follows the fault manager's verdict.
            condition = self.faults.pod_condition(ns, deployment, pod)
            self.store.update(PODS, kubelet_status(self.store, pod, condition),
                              check_version=False)
        for _ in range(want - len(owned)):
            node = self.scheduler.pick(self._pods_of(rs))
            self.store.create(PODS, pods.new_pod(rs, node, self.next_ip()))
        current = self._pods_of(rs)
        ready = sum(1 for p in current if pods.is_ready(p))
        status: dict[str, Any] = {
            "replicas": len(current), "fullyLabeledReplicas": len(current),
            "readyReplicas": ready, "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v != 0 or k == "replicas"}
        if rs.get("status") != status:
            updated = copy.deepcopy(self.store.require(REPLICASETS, ns, rs["metadata"]["name"]))
            updated["status"] = status
            self.store.update(REPLICASETS, updated, check_version=False)

    def _collect_garbage(self) -> None:
        """Cascade deletion: orphans of deleted owners go, as with the GC."""
        for kind, owner_rt in ((REPLICASETS, DEPLOYMENTS), (PODS, REPLICASETS), (JOBS, CRONJOBS),
                               (PODS, STATEFULSETS), (PODS, DAEMONSETS), (PODS, JOBS)):
            for obj in self.store.list(kind):
                refs = [r for r in obj["metadata"].get("ownerReferences") or []
                        if r.get("controller") and r.get("kind") == owner_rt.kind]
                if not refs:
                    continue
                owner = self.store.get(owner_rt, obj["metadata"]["namespace"], refs[0]["name"])
                if owner is None or owner["metadata"]["uid"] != refs[0].get("uid"):
                    self.store.delete(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _sync_bare_pods(self) -> None:
        """Pods created directly through the API: scheduled (unless they name their node,
        which bypasses the scheduler), then running; not Ready while their node is not."""
        for pod in self.store.list(PODS):
            if pod["metadata"].get("ownerReferences"):
                continue
            phase = (pod.get("status") or {}).get("phase")
            updated = copy.deepcopy(pod)
            if not phase:
                node = updated["spec"].get("nodeName") or self.scheduler.pick([])
                if node:
                    updated["spec"]["nodeName"] = node
                    updated["status"] = pods.pending_status(updated["spec"], self.next_ip())
                else:
                    updated["status"] = pods.unscheduled_status(self.scheduler.why_unschedulable())
            else:
                updated = kubelet_status(self.store, updated, pods.HEALTHY)
            self.store.update(PODS, updated, check_version=False)

    # -- jobs and disruption budgets ----------------------------------------
    def _sync_job(self, job: Obj) -> None:
        # A Job whose pod still waits for a node has not run, so it cannot end yet.
        waiting = any(not p["spec"].get("nodeName") for p in pods_of(self.store, job))
        updated = None if waiting else jobs.advance(job, self.store.clock.iso())
        if updated is not None:
            job = self.store.update(JOBS, updated, check_version=False)
        job_pods.sync(self.store, job, next_ip=self.next_ip, scheduler=self.scheduler)

    def pdb_allows_eviction(self, pod: Obj) -> tuple[bool, str]:
        return budgets.allows_eviction(self.store, pod)

    def _pdb_status(self, pdb: Obj) -> None:
        status = budgets.status(self.store, pdb)
        if pdb.get("status") != status:
            updated = copy.deepcopy(pdb)
            updated["status"] = status
            self.store.update(PDBS, updated, check_version=False)
