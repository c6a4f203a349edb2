"""All sandbox state behind one object, independent of HTTP and threads.

SandboxCluster (server.py) adds the HTTP server, the background loop and
persistence around it; the HTTP routes (api.py, control.py) act on it.
"""

from __future__ import annotations

from typing import Any

from . import demo
from .actions import ActionLog
from .controller import DEPLOYMENTS, Controller
from .failures import FailureInjector
from .faults import Fault, FaultManager
from .metrics import TrafficCounters, render
from .store import Store


class SandboxCore:
    def __init__(self) -> None:
        self.store = Store()
        self.faults = FaultManager()
        self.actions = ActionLog()
        self.failures = FailureInjector()
        self.traffic = TrafficCounters()
        self.controller = Controller(self.store, self.faults)
        self.server_address = "127.0.0.1:0"

    def seed(self) -> None:
        """Demo workloads, reconciled until their pods are up (revision 1)."""
        with self.store.lock:
            self.store.clear()
            demo.seed(self.store)
            for _ in range(3):
                self.controller.tick()

    def tick(self) -> None:
        self.controller.tick()
        self.traffic.advance(self.store, self.faults)

    def reset(self) -> None:
        with self.store.lock:
            self.faults.reset()
            self.failures.clear()
            self.actions.clear()
            self.traffic.reset()
            self.seed()

    def inject(self, kind: str, namespace: str, deployment: str) -> dict[str, Any]:
        if kind == "clear":
            self.clear(namespace, deployment)
            return {"kind": "clear", "namespace": namespace, "deployment": deployment}
        fault: Fault = self.faults.inject(self.store, kind, namespace, deployment)
        return fault.to_dict()

    def clear(self, namespace: str | None = None, deployment: str | None = None) -> int:
        return self.faults.clear(namespace, deployment)

    def is_healthy(self, namespace: str, deployment: str) -> bool:
        """All desired replicas updated and available, nothing extra, no fault."""
        if self.faults.active(namespace, deployment):
            return False
        with self.store.lock:
            deploy = self.store.get(DEPLOYMENTS, namespace, deployment)
            if deploy is None:
                return False
            desired = int(deploy["spec"].get("replicas", 1))
            status = deploy.get("status") or {}
            return (
                status.get("observedGeneration", 0) >= deploy["metadata"].get("generation", 1)
                and status.get("updatedReplicas", 0) == desired
                and status.get("availableReplicas", 0) == desired
                and status.get("replicas", 0) == desired
            )

    def metrics_text(self) -> str:
        return render(self.store, self.faults, self.traffic)

    def snapshot(self) -> dict[str, Any]:
        with self.store.lock:
            return {"store": self.store.snapshot(), "faults": self.faults.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        with self.store.lock:
            self.store.restore(data.get("store") or {})
            self.faults.restore(data.get("faults") or [])
