"""When a deployment counts as healthy, and how long it has to stay that way.

Healthy means what an SRE checks after `kubectl rollout status`: the controller
has seen the latest spec, every desired replica is updated and available, no
extra old pods linger, and none of the pods is crashlooping or unready.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.holding import hold_until
from zerotouch.models import RolloutCheck, RolloutStatus

Obj = dict[str, Any]


def _pod_problem(pod: Obj) -> str | None:
    name = pod["metadata"]["name"]
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            return f"pod {name}: CrashLoopBackOff"
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") != "True":
            return f"pod {name}: not ready"
    return None


def rollout_status(deploy: Obj, pods: list[Obj]) -> RolloutStatus:
    """One verdict from a deployment and the pods its selector matches."""
    spec, status, meta = deploy.get("spec") or {}, deploy.get("status") or {}, deploy["metadata"]
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    counts = {"desired": desired, "available": available, "updated": updated}
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 1)):
        return RolloutStatus(healthy=False, **counts, detail="the controller has not observed the latest spec yet")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    problems = [problem for problem in map(_pod_problem, live) if problem]
    complete = updated == available == desired and total == desired
    if complete and not problems:
        return RolloutStatus(healthy=True, **counts, detail=f"{available}/{desired} replicas updated and available")
    summary = f"{updated}/{desired} updated, {available}/{desired} available, {total} total"
    return RolloutStatus(healthy=False, **counts, detail="; ".join([summary, *problems[:3]]))


async def hold_healthy(check: RolloutCheck, probe: Callable[[], RolloutStatus]) -> RolloutStatus:
    """Poll until healthy for ``hold_for_seconds`` in a row, or report the timeout (never raise it)."""
    return await hold_until(probe, flag="healthy", hold_seconds=check.hold_for_seconds,
                            timeout_seconds=check.timeout_seconds, poll_seconds=check.poll_seconds,
                            failure="not healthy")
