"""The control loop: Deployments -> ReplicaSets -> Pods, CronJobs -> Jobs, PDB status.

A deliberately simplified kube-controller-manager. Rollouts are not rolling:
the current ReplicaSet is scaled to spec.replicas and every older one to 0
in the same tick, which keeps tests fast while still producing the objects
and revision annotations kubectl's `rollout undo` reads.
"""

from __future__ import annotations

import copy
from itertools import count
from typing import Any

from . import budgets, jobs, pods, templates
from .cronjobs import CRONJOBS, CronJobController
from .faults import FaultManager
from .resources import get_type
from .store import Obj, Store, now_iso

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


def _owned_by(obj: Obj, owner: Obj) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


class Controller:
    def __init__(self, store: Store, faults: FaultManager) -> None:
        self.store = store
        self.faults = faults
        self._ips = count(10)
        self.cronjobs = CronJobController(store)

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
            self._sync_bare_pods()
            for job in self.store.list(JOBS):
                self._sync_job(job)
            # After the Jobs, so a Job a CronJob creates starts on the next tick, as it would.
            self.cronjobs.sync_all()
            for pdb in self.store.list(PDBS):
                self._pdb_status(pdb)

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
        for rs in self.owned_replicasets(deploy):
            want = desired if rs["metadata"]["uid"] == current["metadata"]["uid"] else 0
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
        status["conditions"] = _conditions(old.get("conditions") or [], [
            ("Available", ready >= desired - _max_unavailable(desired),
             "MinimumReplicasAvailable", "MinimumReplicasUnavailable",
             "Deployment has minimum availability.",
             "Deployment does not have minimum availability."),
            ("Progressing", True,
             "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
             "", f'ReplicaSet "{rs_name}" has successfully progressed.' if complete
             else f'ReplicaSet "{rs_name}" is progressing.', ""),
        ])
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
        nodes = [n["metadata"]["name"] for n in self.store.list(NODES)] or ["sandbox-node-1"]
        deployment = self._deployment_name(rs)
        for pod in owned:
            # Pods created last tick are "ContainerCreating"; from then on
            # their status follows the fault manager's verdict.
            condition = self.faults.pod_condition(ns, deployment, pod)
            self.store.update(PODS, pods.apply_condition(pod, condition), check_version=False)
        for i in range(want - len(owned)):
            ip = next(self._ips)
            pod = pods.new_pod(rs, nodes[(len(owned) + i) % len(nodes)],
                               f"10.244.{(ip // 250) % 250}.{ip % 250 + 2}")
            self.store.create(PODS, pod)
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
        for kind, owner_rt in ((REPLICASETS, DEPLOYMENTS), (PODS, REPLICASETS), (JOBS, CRONJOBS)):
            for obj in self.store.list(kind):
                refs = [r for r in obj["metadata"].get("ownerReferences") or []
                        if r.get("controller") and r.get("kind") == owner_rt.kind]
                if not refs:
                    continue
                owner = self.store.get(owner_rt, obj["metadata"]["namespace"], refs[0]["name"])
                if owner is None or owner["metadata"]["uid"] != refs[0].get("uid"):
                    self.store.delete(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _sync_bare_pods(self) -> None:
        """Pods created directly through the API: scheduled, then running."""
        nodes = [n["metadata"]["name"] for n in self.store.list(NODES)] or ["sandbox-node-1"]
        for pod in self.store.list(PODS):
            if pod["metadata"].get("ownerReferences"):
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Running":
                continue
            updated = copy.deepcopy(pod)
            if not phase:
                updated["spec"].setdefault("nodeName", nodes[0])
                ip = next(self._ips)
                updated["status"] = pods.pending_status(
                    updated["spec"], f"10.244.{(ip // 250) % 250}.{ip % 250 + 2}")
            else:
                updated = pods.apply_condition(updated, pods.HEALTHY)
            self.store.update(PODS, updated, check_version=False)

    # -- jobs and disruption budgets ----------------------------------------
    def _sync_job(self, job: Obj) -> None:
        updated = jobs.advance(job, self.store.clock.iso())
        if updated is not None:
            self.store.update(JOBS, updated, check_version=False)

    def pdb_allows_eviction(self, pod: Obj) -> tuple[bool, str]:
        return budgets.allows_eviction(self.store, pod)

    def _pdb_status(self, pdb: Obj) -> None:
        status = budgets.status(self.store, pdb)
        if pdb.get("status") != status:
            updated = copy.deepcopy(pdb)
            updated["status"] = status
            self.store.update(PDBS, updated, check_version=False)


def _max_unavailable(desired: int) -> int:
    return desired * 25 // 100


def _conditions(old: list[dict[str, Any]], wanted: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    now = now_iso()
    before = {c.get("type"): c for c in old}
    out = []
    for ctype, ok, reason_ok, reason_bad, msg_ok, msg_bad in wanted:
        status = "True" if ok else "False"
        reason, message = (reason_ok, msg_ok) if ok else (reason_bad, msg_bad)
        prev = before.get(ctype) or {}
        same = prev.get("status") == status and prev.get("reason") == reason
        out.append({
            "type": ctype, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": prev.get("lastUpdateTime", now) if same else now,
            "lastTransitionTime": prev.get("lastTransitionTime", now)
            if prev.get("status") == status else now,
        })
    return out
