"""Where pods run: kube-scheduler's placement and the node lifecycle controller's pod marking.

Only what node recovery needs. A new pod goes to a node that is Ready and not cordoned
(`spec.unschedulable`): the one its owner has the fewest pods on, ties taken in turn, so
replicas spread and a drained node's pods land on the others. With no such node it stays
Pending and unscheduled until one appears. A pod bound to a node that stops being Ready
loses its readiness but stays bound, as in a real cluster until taint-based eviction
(five minutes) or the node's return; nothing here evicts. DaemonSet pods are placed by
their controller and ignore cordons (daemonsets.py).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any

from . import pods
from .resources import get_type
from .store import Obj, Store, now_iso

NODES = get_type("", "nodes")
PODS = get_type("", "pods")


def ready_status(node: Obj) -> str:
    """The node's Ready condition: "True", "False" or "Unknown" (also when it has none)."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status") or "Unknown")
    return "Unknown"


def schedulable(node: Obj) -> bool:
    return ready_status(node) == "True" and not (node.get("spec") or {}).get("unschedulable")


def eligible_nodes(store: Store) -> list[str]:
    return [n["metadata"]["name"] for n in store.list(NODES) if schedulable(n)]


def _controller_uid(pod: Obj) -> str:
    return next((str(r.get("uid")) for r in pod["metadata"].get("ownerReferences") or []
                 if r.get("controller")), "")


class Scheduler:
    def __init__(self, store: Store, *, next_ip: Callable[[], str]) -> None:
        self.store, self.next_ip = store, next_ip
        self._turn = 0

    def pick(self, siblings: list[Obj]) -> str | None:
        """A node for one more pod beside `siblings` (its owner's pods), or None for none."""
        eligible = eligible_nodes(self.store)
        if not eligible:
            return None
        load = Counter(p["spec"].get("nodeName") for p in siblings)
        fewest = min(load[name] for name in eligible)
        for step in range(len(eligible)):
            index = (self._turn + step) % len(eligible)
            if load[eligible[index]] == fewest:
                self._turn = index + 1
                return eligible[index]
        raise AssertionError("unreachable: some eligible node has the fewest pods")

    def why_unschedulable(self) -> str:
        """kube-scheduler's event text, counting why each node was refused."""
        nodes = self.store.list(NODES)
        cordoned = sum(1 for n in nodes if (n.get("spec") or {}).get("unschedulable"))
        not_ready = sum(1 for n in nodes if ready_status(n) != "True"
                        and not (n.get("spec") or {}).get("unschedulable"))
        reasons = [f"{count} node(s) {what}" for count, what in
                   ((cordoned, "were unschedulable"), (not_ready, "were not ready")) if count]
        return f"0/{len(nodes)} nodes are available: {', '.join(reasons) or 'no nodes'}."

    def bind_pending(self) -> None:
        """Bind every unscheduled pod a node can now take; the rest say why they wait."""
        every = self.store.list(PODS)
        for pod in every:
            if pod["spec"].get("nodeName") or (pod.get("status") or {}).get("phase") != "Pending":
                continue
            uid = _controller_uid(pod)
            siblings = [p for p in every if uid and _controller_uid(p) == uid]
            node = self.pick(siblings)
            updated = copy.deepcopy(pod)
            if node is None:
                message = self.why_unschedulable()
                scheduled: dict[str, Any] = next((c for c in pod["status"].get("conditions") or []
                                  if c.get("type") == "PodScheduled"), {})
                if scheduled.get("message") == message:
                    continue
                updated["status"] = pods.unscheduled_status(message)
            else:
                updated["spec"]["nodeName"] = node
                updated["status"] = pods.pending_status(updated["spec"], self.next_ip())
            stored = self.store.update(PODS, updated, check_version=False)
            every = [stored if p["metadata"]["uid"] == stored["metadata"]["uid"] else p
                     for p in every]


def kubelet_status(store: Store, pod: Obj, condition: str) -> Obj:
    """`pod` one tick on, as its kubelet reports `condition` (pods.py). An unscheduled pod
    is left as it is; a pod on a node that is not Ready is marked not Ready, as the node
    lifecycle controller does (its containers' last reported states stay)."""
    name = pod["spec"].get("nodeName")
    if not name:
        return pod
    updated = pods.apply_condition(pod, condition)
    node = store.get(NODES, "", name)
    if node is not None and ready_status(node) != "True":
        before: dict[str, Any] = next((c for c in (pod.get("status") or {}).get("conditions") or []
                       if c.get("type") == "Ready"), {})
        for cond in updated["status"].get("conditions") or []:
            if cond.get("type") == "Ready":
                cond["status"] = "False"
                cond["reason"] = "NodeNotReady"
                cond["lastTransitionTime"] = (before.get("lastTransitionTime")
                                              if before.get("status") == "False" else now_iso())
    return updated
