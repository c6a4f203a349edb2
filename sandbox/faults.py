"""Fault injection: what is broken, how it shows, and what repairs it.

Every fault records, at injection time, the condition that clears it (a new
pod template, a memory limit, a replica count, a successful cleanup Job), so
the controller only has to compare the cluster against that record each tick.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import pods, templates
from .resources import get_type
from .store import Store

KINDS = ("crashloop", "oom", "bad-deploy", "overload", "unfixable", "disk-pressure")
CLEANUP_JOB_LABEL = "zerotouch.io/job"
CLEANUP_JOB_VALUE = "log-cleanup"
DEFAULT_MEMORY_BYTES = 256 * 2**20
MAX_OVERLOAD_REPLICAS = 10

DEPLOYMENTS = get_type("apps", "deployments")
JOBS = get_type("batch", "jobs")


@dataclass
class Fault:
    kind: str
    namespace: str
    deployment: str
    injected_at: float = field(default_factory=time.time)
    template_hash: str = ""  # crashloop: the template that crashes
    memory_required_bytes: float = 0.0  # oom: limit that fixes it
    required_replicas: int = 0  # overload: replicas that absorb the load
    bad_images: list[str] = field(default_factory=list)  # bad-deploy
    jobs_before: list[str] = field(default_factory=list)  # disk-pressure: job uids to ignore
    resolved_at: float | None = None
    resolved_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultManager:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._active: list[Fault] = []
        self._resolved: list[Fault] = []

    # -- bookkeeping -------------------------------------------------------
    def active(self, namespace: str | None = None, deployment: str | None = None) -> list[Fault]:
        with self._lock:
            return [f for f in self._active
                    if namespace in (None, f.namespace) and deployment in (None, f.deployment)]

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"active": [f.to_dict() for f in self._active],
                    "resolved": [f.to_dict() for f in self._resolved[-50:]]}

    def clear(self, namespace: str | None = None, deployment: str | None = None) -> int:
        with self._lock:
            gone = self.active(namespace, deployment)
            for fault in gone:
                self._finish(fault, "clear")
            return len(gone)

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self._resolved.clear()

    def _finish(self, fault: Fault, by: str) -> None:
        fault.resolved_at, fault.resolved_by = time.time(), by
        self._active.remove(fault)
        self._resolved.append(fault)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._active]

    def restore(self, data: list[dict[str, Any]]) -> None:
        with self._lock:
            self._active = [Fault(**item) for item in data]

    # -- injection ---------------------------------------------------------
    def inject(self, store: Store, kind: str, namespace: str, deployment: str) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        with store.lock, self._lock:
            deploy = store.get(DEPLOYMENTS, namespace, deployment)
            if deploy is None:
                raise ValueError(f"no deployment {namespace}/{deployment} in the sandbox")
            template = deploy["spec"]["template"]
            fault = Fault(kind, namespace, deployment)
            if kind == "crashloop":
                fault.template_hash = templates.template_hash(template)
            elif kind == "oom":
                limit = templates.memory_limit(template) or DEFAULT_MEMORY_BYTES
                fault.memory_required_bytes = 2 * limit
            elif kind == "overload":
                replicas = max(1, int(deploy["spec"].get("replicas", 1)))
                fault.required_replicas = min(replicas * 2, MAX_OVERLOAD_REPLICAS)
            elif kind == "disk-pressure":
                fault.jobs_before = [j["metadata"]["uid"] for j in store.list(JOBS, namespace)]
            elif kind == "bad-deploy":
                fault.bad_images = _roll_out_bad_image(store, deploy)
            # One fault of a kind per deployment: re-injecting replaces it.
            for old in self.active(namespace, deployment):
                if old.kind == kind:
                    self._finish(old, "replaced")
            self._active.append(fault)
            return fault

    # -- evaluation (called by the controller with the store lock held) ----
    def resolve(self, store: Store) -> None:
        with self._lock:
            for fault in list(self._active):
                deploy = store.get(DEPLOYMENTS, fault.namespace, fault.deployment)
                if deploy is None:
                    self._finish(fault, "deployment deleted")
                    continue
                by = _remedy(store, fault, deploy)
                if by:
                    self._finish(fault, by)

    def pod_condition(self, namespace: str, deployment: str, pod: dict[str, Any]) -> str:
        condition = pods.HEALTHY
        pod_hash = (pod["metadata"].get("labels") or {}).get(templates.HASH_LABEL, "")
        pod_images = {c.get("image") for c in pod["spec"].get("containers", [])}
        for fault in self.active(namespace, deployment):
            if fault.kind == "unfixable" or (
                fault.kind == "crashloop" and pod_hash == fault.template_hash
            ):
                return pods.CRASH
            if fault.kind == "oom":
                return pods.OOM
            if fault.kind == "overload" or (
                fault.kind == "bad-deploy" and pod_images & set(fault.bad_images)
            ):
                condition = pods.UNREADY
        return condition

    def has(self, kind: str, namespace: str, deployment: str) -> bool:
        return any(f.kind == kind for f in self.active(namespace, deployment))


def _roll_out_bad_image(store: Store, deploy: dict[str, Any]) -> list[str]:
    """Publish a new revision whose image is broken, as a bad release would."""
    updated = copy.deepcopy(deploy)
    bad = []
    for container in templates.containers(updated["spec"]["template"]):
        image = container.get("image", "")
        if not image.endswith("-bad"):
            image = f"{image}-bad"
        container["image"] = image
        bad.append(image)
    store.update(DEPLOYMENTS, updated, check_version=False)
    return bad


def _remedy(store: Store, fault: Fault, deploy: dict[str, Any]) -> str:
    """Name of the remedy that has been applied, or "" while still broken."""
    template = deploy["spec"]["template"]
    if fault.kind == "crashloop":
        if templates.template_hash(template) != fault.template_hash:
            return "new pod template"
    elif fault.kind == "oom":
        limit = templates.memory_limit(template) or 0
        if limit >= fault.memory_required_bytes:
            return "memory limit raised"
    elif fault.kind == "bad-deploy":
        if not set(templates.images(template).values()) & set(fault.bad_images):
            return "rolled back"
    elif fault.kind == "overload":
        if int(deploy["spec"].get("replicas", 0)) >= fault.required_replicas:
            return "scaled up"
    elif fault.kind == "disk-pressure":
        for job in store.list(JOBS, fault.namespace):
            labels = job["metadata"].get("labels") or {}
            if (labels.get(CLEANUP_JOB_LABEL) == CLEANUP_JOB_VALUE
                    and job["metadata"]["uid"] not in fault.jobs_before
                    and int((job.get("status") or {}).get("succeeded") or 0) >= 1):
                return "cleanup job succeeded"
    return ""
