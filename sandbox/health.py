"""Is a workload healthy: every desired pod updated and available, and no fault on it."""

from __future__ import annotations

from .fault_targets import DAEMONSET, STATEFULSET, FaultTarget
from .store import Obj


def workload_healthy(target: FaultTarget, obj: Obj) -> bool:
    status = obj.get("status") or {}
    current = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 1)
    if target.kind == DAEMONSET:
        desired = status.get("desiredNumberScheduled", 0)
        return current and desired == status.get("numberReady", 0) == status.get(
            "updatedNumberScheduled", 0) == status.get("currentNumberScheduled", 0)
    desired = int(obj["spec"].get("replicas", 1))
    if target.kind == STATEFULSET:
        return (current and status.get("currentRevision") == status.get("updateRevision")
                and status.get("readyReplicas", 0) == status.get("updatedReplicas", 0)
                == status.get("replicas", 0) == desired)
    return (current and status.get("updatedReplicas", 0) == desired
            and status.get("availableReplicas", 0) == desired
            and status.get("replicas", 0) == desired)
