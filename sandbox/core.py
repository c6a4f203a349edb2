"""All sandbox state behind one object, independent of HTTP and threads.

SandboxCluster (server.py) adds the HTTP server, the background loop and
persistence around it; the HTTP routes (api.py, control.py) act on it.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from . import demo, jobs
from .actions import ActionLog
from .clock import Clock
from .controller import JOBS, Controller
from .cronjobs import CRONJOBS
from .failures import FailureInjector
from .fault_targets import parse_target
from .faults import Fault, FaultManager
from .health import workload_healthy
from .metrics import TrafficCounters, render, render_endpoint
from .nodes import NodeManager
from .store import Store


class SandboxCore:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.faults = FaultManager()
        self.actions = ActionLog()
        self.failures = FailureInjector()
        self.traffic = TrafficCounters()
        self.controller = Controller(self.store, self.faults)
        self.nodes = NodeManager(self.store)
        self.server_address = "127.0.0.1:0"

    def seed(self) -> None:
        """Demo workloads, reconciled until their pods are up (revision 1)."""
        with self.store.lock:
            self.store.clear()
            demo.seed(self.store)
            for _ in range(3):
                self.controller.tick()

    def tick(self) -> None:
        self.nodes.settle()
        self.controller.tick()
        self.traffic.advance(self.store, self.faults)

    def reset(self) -> None:
        with self.store.lock:
            self.faults.reset()
            self.nodes.reset()
            self.failures.clear()
            self.actions.clear()
            self.traffic.reset()
            self.clock.reset()
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
        """All desired replicas updated and available, nothing extra, no fault. `deployment`
        may name another workload as faults do (`statefulset/db`, see fault_targets.py)."""
        target = parse_target(namespace, deployment)
        if self.faults.active(target.namespace, target.name):
            return False
        with self.store.lock:
            obj = self.store.get(target.resource, target.namespace, target.name)
            return obj is not None and workload_healthy(target, obj)

    # -- time and Jobs, for tests that drive CronJobs --------------------------
    def advance_clock(self, seconds: float) -> datetime:
        return self.clock.advance(seconds)

    def set_clock(self, when: datetime | float, frozen: bool = True) -> datetime:
        return self.clock.set(when, frozen)

    def finish_job(self, namespace: str, name: str, outcome: str = jobs.COMPLETE) -> dict[str, Any]:
        """End a running Job now as "Complete" or "Failed", as the Job controller would.
        ValueError for another outcome or a Job that already ended; ApiError 404 if absent."""
        with self.store.lock:
            job = self.store.require(JOBS, namespace, name)
            if jobs.finished(job):
                raise ValueError(f"job {namespace}/{name} has already finished "
                                 f"({jobs.finished(job)})")
            done = jobs.finish(job, outcome, self.clock.iso())
            return self.store.update(JOBS, done, check_version=False)

    def jobs_of(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        """Copies of the Jobs a CronJob controls, by name (so by scheduled minute)."""
        with self.store.lock:
            owner = self.store.get(CRONJOBS, namespace, cronjob)
            if owner is None:
                return []
            uid = owner["metadata"]["uid"]
            found = [copy.deepcopy(j) for j in self.store.list(JOBS, namespace)
                     if any(r.get("uid") == uid and r.get("controller")
                            for r in j["metadata"].get("ownerReferences") or [])]
        return sorted(found, key=lambda j: (len(j["metadata"]["name"]), j["metadata"]["name"]))

    def metrics_text(self) -> str:
        return render(self.store, self.faults, self.traffic)

    def exporter_text(self, exporter: str) -> str:
        """One exporter's page (metrics.ENDPOINTS); KeyError for an unknown exporter."""
        return render_endpoint(exporter, self.store, self.faults, self.traffic)

    def snapshot(self) -> dict[str, Any]:
        with self.store.lock:
            return {"store": self.store.snapshot(), "faults": self.faults.snapshot(),
                    "clock": self.clock.snapshot(), "nodes": self.nodes.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        with self.store.lock:
            self.store.restore(data.get("store") or {})
            self.faults.restore(data.get("faults") or [])
            self.clock.restore(data.get("clock") or {})
            self.nodes.restore(data.get("nodes") or {})
