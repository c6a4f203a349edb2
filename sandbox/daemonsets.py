"""apps/v1 DaemonSets: one pod `<name>-<5 safe chars>` per matching node, and their status.

Pods whose `controller-revision-hash` is not the template's are replaced in the
same tick (not rolling). Daemon pods tolerate cordoned nodes, as the real ones
do (node.kubernetes.io/unschedulable), so `spec.unschedulable` does not matter;
`spec.template.spec.nodeSelector` does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from . import pods, templates
from .faults import FaultManager
from .ownership import NODES, pods_of
from .resources import get_type
from .scheduling import kubelet_status
from .store import Obj, Store

DAEMONSETS = get_type("apps", "daemonsets")
PODS = get_type("", "pods")
GENERATION_LABEL = "pod-template-generation"


class DaemonSetController:
    def __init__(self, store: Store, faults: FaultManager, *, next_ip: Callable[[], str]) -> None:
        self.store, self.faults, self.next_ip = store, faults, next_ip

    def sync_all(self) -> None:
        for ds in self.store.list(DAEMONSETS):
            self.sync(ds)

    def eligible_nodes(self, ds: Obj) -> list[str]:
        wanted = ((ds["spec"].get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        return [n["metadata"]["name"] for n in self.store.list(NODES)
                if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]

    def sync(self, ds: Obj) -> None:
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        revision = templates.template_hash(ds["spec"]["template"])
        nodes = self.eligible_nodes(ds)
        covered: set[str] = set()
        for pod in pods_of(self.store, ds):
            node = pod["spec"].get("nodeName", "")
            labels = pod["metadata"].get("labels") or {}
            if node not in nodes or node in covered or labels.get(templates.REVISION_LABEL) != revision:
                self.store.delete(PODS, ns, pod["metadata"]["name"])
                continue
            covered.add(node)
            condition = self.faults.pod_condition(ns, name, pod, "DaemonSet")
            self.store.update(PODS, kubelet_status(self.store, pod, condition),
                              check_version=False)
        for node in nodes:
            if node not in covered:
                pod = pods.owned_pod(ds, "apps/v1", ds["spec"]["template"],
                                     f"{name}-{pods.random_suffix()}", node, self.next_ip(), {
                                         templates.REVISION_LABEL: revision,
                                         GENERATION_LABEL: str(ds["metadata"].get("generation", 1))})
                self.store.create(PODS, pod)
        self._write_status(ds, revision, len(nodes))

    def _write_status(self, ds: Obj, revision: str, desired: int) -> None:
        current = pods_of(self.store, ds)
        ready = sum(1 for p in current if pods.is_ready(p))
        updated = sum(1 for p in current
                      if (p["metadata"].get("labels") or {}).get(templates.REVISION_LABEL)
                      == revision)
        status: dict[str, Any] = {
            "currentNumberScheduled": len(current), "desiredNumberScheduled": desired,
            "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
            "numberUnavailable": max(0, desired - ready), "updatedNumberScheduled": updated,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        # omitempty in the API types, unlike the four counts above them
        for key in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if status[key] == 0:
                del status[key]
        if status != (ds.get("status") or {}):
            fresh = copy.deepcopy(self.store.require(DAEMONSETS, ds["metadata"]["namespace"],
                                                     ds["metadata"]["name"]))
            fresh["status"] = status
            self.store.update(DAEMONSETS, fresh, check_version=False)
