"""A Deployment's Available and Progressing conditions, as the deployment controller sets them.

Progressing follows pkg/controller/deployment/progress.go: a complete rollout is
NewReplicaSetAvailable and stays so even if pods later fail (a finished rollout
never times out); a rollout that has made no progress for
spec.progressDeadlineSeconds turns False with ProgressDeadlineExceeded. Time is
the sandbox clock's, so a test advances it instead of waiting ten minutes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .clock import parse_iso, to_iso

NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
DEFAULT_DEADLINE_SECONDS = 600

Condition = dict[str, Any]


def max_unavailable(desired: int) -> int:
    return desired * 25 // 100


def conditions(deploy: dict[str, Any], rs_name: str, ready: int, complete: bool,
               now: datetime) -> list[Condition]:
    old = (deploy.get("status") or {}).get("conditions") or []
    desired = int(deploy["spec"].get("replicas", 1))
    available = ready >= desired - max_unavailable(desired)
    wanted = [
        ("Available", available,
         "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
         "Deployment has minimum availability." if available
         else "Deployment does not have minimum availability."),
        ("Progressing", *_progressing(deploy, old, rs_name, complete, now)),
    ]
    return _with_times(old, wanted, to_iso(now))


def _progressing(deploy: dict[str, Any], old: list[Condition], rs_name: str, complete: bool,
                 now: datetime) -> tuple[bool, str, str]:
    prev = next((c for c in old if c.get("type") == "Progressing"), {})
    same_rs = f'"{rs_name}"' in str(prev.get("message", ""))
    if complete:
        return True, NEW_RS_AVAILABLE, f'ReplicaSet "{rs_name}" has successfully progressed.'
    if same_rs and prev.get("reason") in (NEW_RS_AVAILABLE, DEADLINE_EXCEEDED):
        return prev.get("status") == "True", str(prev["reason"]), str(prev["message"])
    deadline = deploy["spec"].get("progressDeadlineSeconds", DEFAULT_DEADLINE_SECONDS)
    since = parse_iso(prev.get("lastUpdateTime")) if same_rs else None
    if since is not None and (now - since).total_seconds() > float(deadline):
        return False, DEADLINE_EXCEEDED, f'ReplicaSet "{rs_name}" has timed out progressing.'
    return True, RS_UPDATED, f'ReplicaSet "{rs_name}" is progressing.'


def _with_times(old: list[Condition], wanted: list[tuple[str, bool, str, str]],
                now: str) -> list[Condition]:
    before = {c.get("type"): c for c in old}
    out = []
    for ctype, ok, reason, message in wanted:
        status = "True" if ok else "False"
        prev = before.get(ctype) or {}
        same = (prev.get("status"), prev.get("reason"), prev.get("message")) == (
            status, reason, message)
        out.append({
            "type": ctype, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": prev.get("lastUpdateTime", now) if same else now,
            "lastTransitionTime": prev.get("lastTransitionTime", now)
            if prev.get("status") == status else now,
        })
    return out
