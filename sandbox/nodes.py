"""Node faults and the infrastructure provider: what node recovery is tested against.

A fault is what the node lifecycle controller would write once a kubelet misbehaves:
"NotReady" (the kubelet reports Ready=False, reason KubeletNotReady) or "Unreachable"
(it stopped reporting: Ready=Unknown, reason NodeStatusUnknown). Either way the node
gets the matching NoSchedule taint and its pods lose readiness but stay bound
(scheduling.py). The provider's reboot or replace takes the node down at once, kills
every pod on it but the DaemonSets' (their owners recreate them elsewhere) and brings it
back Ready, fault and taints gone, `delay_seconds` later on the sandbox clock. Cordoning
(`spec.unschedulable`) is the client's and is never touched here.

The faults live here rather than in the Node objects so that a client writing node
status cannot clear them, as it could not clear a dead kubelet; they are snapshotted
with the rest of the sandbox and cleared by a reset.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from .clock import to_iso
from .errors import ApiError
from .resources import get_type
from .scheduling import ready_status
from .store import Obj, Store

NODES = get_type("", "nodes")
PODS = get_type("", "pods")
MODES = ("NotReady", "Unreachable")
ACTIONS = ("reboot", "replace")
MAX_DELAY_SECONDS = 3600.0
# mode -> (Ready status, reason, message, the taint the node lifecycle controller adds)
_DOWN = {
    "NotReady": ("False", "KubeletNotReady", "container runtime is down",
                 "node.kubernetes.io/not-ready"),
    "Unreachable": ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
                    "node.kubernetes.io/unreachable"),
}
_OUR_TAINTS = {taint for *_, taint in _DOWN.values()}


@dataclass
class ProviderOperation:
    action: str
    ready_at: float  # sandbox-clock epoch seconds

    def describe(self) -> dict[str, Any]:
        return {"action": self.action, "ready_at": _iso(self.ready_at)}


def _iso(epoch: float) -> str:
    return to_iso(datetime.fromtimestamp(epoch, UTC))


def _is_daemon_pod(pod: Obj) -> bool:
    return any(r.get("controller") and r.get("kind") == "DaemonSet"
               for r in pod["metadata"].get("ownerReferences") or [])


class NodeManager:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._faults: dict[str, str] = {}
        self._operations: dict[str, ProviderOperation] = {}

    # -- the control routes ------------------------------------------------------
    def fail(self, name: str, mode: str) -> dict[str, Any]:
        """Put `name` into fault `mode` ("NotReady", "Unreachable"; "Ready" clears it)."""
        if mode not in (*MODES, "Ready"):
            raise ValueError(f"unknown node fault mode {mode!r}; expected NotReady, "
                             "Unreachable or Ready")
        with self.store.lock, self._lock:
            self._require(name)
            if mode == "Ready":
                self._faults.pop(name, None)
                self._operations.pop(name, None)
                self._write(name, None)
            else:
                self._faults[name] = mode
                self._write(name, mode)
            return self.describe(name)

    def provider(self, name: str, action: str, delay_seconds: Any = 5.0) -> dict[str, Any]:
        """The provider reboots or replaces `name`; a call while one runs returns that one."""
        if action not in ACTIONS:
            raise ValueError(f"unknown provider action {action!r}; expected reboot or replace")
        if (isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int | float)
                or not 0 <= delay_seconds <= MAX_DELAY_SECONDS):
            raise ValueError(f"delay_seconds must be a number from 0 to {MAX_DELAY_SECONDS:g}, "
                             f"not {delay_seconds!r}")
        with self.store.lock, self._lock:
            self._require(name)
            self.settle()
            operation = self._operations.get(name)
            if operation is None:
                operation = ProviderOperation(action, self.store.clock.time() + delay_seconds)
                self._operations[name] = operation
                mode = self._faults.setdefault(name, "NotReady")
                self._write(name, mode)
                for pod in self.store.list(PODS):
                    if pod["spec"].get("nodeName") == name and not _is_daemon_pod(pod):
                        self.store.delete(PODS, pod["metadata"]["namespace"],
                                          pod["metadata"]["name"])
            # A zero delay brings the node back now, not a tick later.
            self.settle()
            return {"node": name, **operation.describe()}

    def describe(self, name: str) -> dict[str, Any]:
        with self.store.lock, self._lock:
            self.settle()
            node = self._require(name)
            operation = self._operations.get(name)
            return {"name": name, "ready": ready_status(node),
                    "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
                    "fault": self._faults.get(name),
                    "provider": operation.describe() if operation else None}

    # -- the controller loop -----------------------------------------------------
    def settle(self) -> None:
        """Finish the provider operations whose time has come (each tick, and before reads)."""
        with self.store.lock, self._lock:
            now = self.store.clock.time()
            for name, operation in list(self._operations.items()):
                if operation.ready_at > now:
                    continue
                del self._operations[name]
                self._faults.pop(name, None)
                if self.store.get(NODES, "", name) is not None:
                    self._write(name, None, rebooted=True)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._operations.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": dict(self._faults),
                    "operations": {n: asdict(op) for n, op in self._operations.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._faults = {str(k): str(v) for k, v in (data.get("faults") or {}).items()}
            self._operations = {str(n): ProviderOperation(str(op["action"]), float(op["ready_at"]))
                                for n, op in (data.get("operations") or {}).items()}

    # -- writing the Node ----------------------------------------------------------
    def _require(self, name: str) -> Obj:
        node = self.store.get(NODES, "", name)
        if node is None:
            raise ApiError(404, f"no node {name!r} in the sandbox")
        return node

    def _write(self, name: str, mode: str | None, rebooted: bool = False) -> None:
        """The Node as the node lifecycle controller shows `mode` (None: healthy again)."""
        node = copy.deepcopy(self._require(name))
        now = self.store.clock.iso()
        status, reason, message, taint = _DOWN[mode] if mode else (
            "True", "KubeletReady", "kubelet is posting ready status", "")
        conditions = node.setdefault("status", {}).setdefault("conditions", [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None:
            ready = {"type": "Ready"}
            conditions.append(ready)
        if ready.get("status") != status:
            ready["lastTransitionTime"] = now
        ready.update({"status": status, "reason": reason, "message": message,
                      "lastHeartbeatTime": ready.get("lastHeartbeatTime") if mode else now})
        spec = node.setdefault("spec", {})
        old = spec.get("taints") or []
        taints = [t for t in old if t.get("key") not in _OUR_TAINTS or t.get("key") == taint]
        if taint and not any(t.get("key") == taint for t in taints):
            taints.append({"key": taint, "effect": "NoSchedule", "timeAdded": now})
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        if rebooted:  # a rebooted or replaced machine comes back with a new boot ID
            info = node["status"].setdefault("nodeInfo", {})
            boot = str(info.get("bootID") or "sandbox-boot").split("+")[0]
            info["bootID"] = f"{boot}+{int(self.store.clock.time())}"
        self.store.update(NODES, node, check_version=False)
