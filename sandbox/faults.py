"""Fault injection: what is broken, how it shows, and what repairs it.

Every fault records, at injection time, the condition that clears it (a new
pod template, a memory limit, a replica count, a successful cleanup Job, a
larger volume), so the controller only has to compare the cluster against
that record each tick (fault_remedies.py).

Kinds and what they break (targets: see fault_targets.py; `shop/web` is the
Deployment, `shop/statefulset/db` / `shop/daemonset/node-agent` other owners,
`shop/pvc/data-db-0` a claim):

- crashloop, oom, unfixable: pods of the current template crash (any workload).
- stuck-pending: pods of the current template are recreated and stay Pending in
  ContainerCreating until a rolling restart (`rollout restart`) replaces them.
- bad-deploy: a new revision with a broken image; its pods get ready and answer half the requests with 5xx.
- stuck-rollout: a new revision whose image tag does not exist (ImagePullBackOff);
  after spec.progressDeadlineSeconds on the sandbox clock the Deployment's
  Progressing condition turns False (ProgressDeadlineExceeded). `rollout undo` fixes it.
- overload: consumer lag until the Deployment is scaled up.
- disk-pressure: legacy `<deployment>-data` usage until a log-cleanup Job succeeds.
- volume-filling: the PVC's available bytes drop below 3% of capacity and keep
  falling until the claim is expanded (spec.resources.requests.storage raised).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import fault_rollouts, pods, templates
from .fault_remedies import remedy
from .fault_targets import DAEMONSET, DEPLOYMENT, PVC, STATEFULSET, parse_target
from .quantity import parse_quantity
from .resources import get_type
from .store import Obj, Store

KINDS = ("crashloop", "oom", "bad-deploy", "overload", "unfixable", "disk-pressure",
         "stuck-pending", "stuck-rollout", "volume-filling")
DEFAULT_MEMORY_BYTES = 256 * 2**20
MAX_OVERLOAD_REPLICAS = 10

_WORKLOADS = (DEPLOYMENT, STATEFULSET, DAEMONSET)
# The owners each kind can break; the first is what a bare name means.
TARGET_KINDS: dict[str, tuple[str, ...]] = {
    "crashloop": _WORKLOADS, "oom": _WORKLOADS, "unfixable": _WORKLOADS,
    "stuck-pending": _WORKLOADS, "bad-deploy": (DEPLOYMENT,), "stuck-rollout": (DEPLOYMENT,),
    "overload": (DEPLOYMENT,), "disk-pressure": (DEPLOYMENT,), "volume-filling": (PVC,),
}
JOBS = get_type("batch", "jobs")
PODS = get_type("", "pods")


@dataclass
class Fault:
    kind: str
    namespace: str
    deployment: str  # the target's name, whatever its kind (kept for API compatibility)
    injected_at: float = field(default_factory=time.time)
    target_kind: str = DEPLOYMENT
    template_hash: str = ""  # crashloop, stuck-pending, stuck-rollout: the broken template
    memory_required_bytes: float = 0.0  # oom: limit that fixes it
    required_replicas: int = 0  # overload: replicas that absorb the load
    bad_images: list[str] = field(default_factory=list)  # bad-deploy, stuck-rollout
    jobs_before: list[str] = field(default_factory=list)  # disk-pressure: job uids to ignore
    volume_bytes: float = 0.0  # volume-filling: the claim's size when it filled up
    clock_at: float = 0.0  # sandbox-clock time of injection (volume-filling falls from it)
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
        if namespace is not None and deployment is not None:
            target = parse_target(namespace, deployment)
            namespace, deployment = target.namespace, target.name
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
        allowed = TARGET_KINDS[kind]
        target = parse_target(namespace, deployment, allowed[0])
        if target.kind not in allowed:
            raise ValueError(f"{kind} breaks a {' or '.join(allowed)}, not a {target.kind}")
        with store.lock, self._lock:
            obj = store.get(target.resource, target.namespace, target.name)
            if obj is None:
                raise ValueError(f"no {target.kind.lower()} {target.namespace}/{target.name} "
                                 "in the sandbox")
            fault = Fault(kind, target.namespace, target.name, target_kind=target.kind,
                          clock_at=store.clock.time())
            _record_remedy(store, fault, obj)
            # One fault of a kind per target: re-injecting replaces it.
            for old in self.active(target.namespace, target.name):
                if old.kind == kind and old.target_kind == target.kind:
                    self._finish(old, "replaced")
            self._active.append(fault)
            return fault

    # -- evaluation (called by the controller with the store lock held) ----
    def resolve(self, store: Store) -> None:
        with self._lock:
            for fault in list(self._active):
                obj = store.get(parse_target(fault.namespace, fault.deployment,
                                             fault.target_kind).resource,
                                fault.namespace, fault.deployment)
                if obj is None:
                    self._finish(fault, f"{fault.target_kind.lower()} deleted")
                    continue
                by = remedy(store, fault, obj)
                if by:
                    self._finish(fault, by)

    def pod_condition(self, namespace: str, owner: str, pod: Obj,
                      owner_kind: str = DEPLOYMENT) -> str:
        """How a pod of `owner_kind` `namespace/owner` looks, given the active faults."""
        condition = pods.HEALTHY
        pod_hash = templates.pod_template_hash(pod)
        pod_images = {c.get("image") for c in pod["spec"].get("containers", [])}
        for fault in self.active(namespace, owner):
            if fault.target_kind != owner_kind:
                continue
            broken_template = pod_hash == fault.template_hash
            if fault.kind == "unfixable" or (fault.kind == "crashloop" and broken_template):
                return pods.CRASH
            if fault.kind == "oom":
                return pods.OOM
            if fault.kind == "stuck-pending" and broken_template:
                return pods.PENDING
            if fault.kind == "stuck-rollout" and pod_images & set(fault.bad_images):
                return pods.IMAGE_PULL
            # A bad release passes its readiness probe and answers 5xx (the traffic series show it),
            # so its rollout completes and the old pods are gone: only a rollback brings them back.
            if fault.kind == "overload":
                condition = pods.UNREADY
        return condition

    def has(self, kind: str, namespace: str, deployment: str) -> bool:
        return any(f.kind == kind for f in self.active(namespace, deployment))

    def filling(self, namespace: str, claim: str) -> Fault | None:
        """The volume-filling fault on a PVC, if any (the kubelet series read it)."""
        return next((f for f in self.active(namespace, claim)
                     if f.kind == "volume-filling" and f.target_kind == PVC), None)


def _record_remedy(store: Store, fault: Fault, obj: Obj) -> None:
    """Write into `fault` what will count as repaired, breaking the cluster where needed."""
    kind = fault.kind
    if kind == "volume-filling":
        fault.volume_bytes = volume_request(obj)
        return
    template = obj["spec"]["template"]
    if kind in ("crashloop", "stuck-pending"):
        fault.template_hash = templates.template_hash(template)
    if kind == "stuck-pending":
        _recreate_pods(store, fault)
    elif kind == "oom":
        limit = templates.memory_limit(template) or DEFAULT_MEMORY_BYTES
        fault.memory_required_bytes = 2 * limit
    elif kind == "overload":
        replicas = max(1, int(obj["spec"].get("replicas", 1)))
        fault.required_replicas = min(replicas * 2, MAX_OVERLOAD_REPLICAS)
    elif kind == "disk-pressure":
        fault.jobs_before = [j["metadata"]["uid"] for j in store.list(JOBS, fault.namespace)]
    elif kind == "bad-deploy":
        fault.bad_images = fault_rollouts.roll_out_bad_image(store, obj)
    elif kind == "stuck-rollout":
        fault.bad_images, fault.template_hash = fault_rollouts.roll_out_missing_tag(store, obj)


def _recreate_pods(store: Store, fault: Fault) -> None:
    """The broken template's running pods go (as after a node drain); their owner's
    replacements are the ones that then stay Pending."""
    for pod in store.list(PODS, fault.namespace):
        if templates.pod_template_hash(pod) == fault.template_hash:
            store.delete(PODS, fault.namespace, pod["metadata"]["name"])


def volume_request(claim: Obj) -> float:
    """The storage a PVC asks for, in bytes (0 when it names none)."""
    wanted = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {})
    return parse_quantity(wanted.get("storage")) or 0.0
