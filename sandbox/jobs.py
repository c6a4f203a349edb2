"""Job lifecycle: every sandbox Job starts on one tick and succeeds on the next."""

from __future__ import annotations

import copy
from typing import Any

from .store import now_iso


def advance(job: dict[str, Any]) -> dict[str, Any] | None:
    """The job one step further along, or None once it has finished."""
    status = copy.deepcopy(job.get("status") or {})
    if status.get("succeeded") or status.get("failed"):
        return None
    now = now_iso()
    if not status.get("active"):
        status.update({"active": 1, "startTime": now, "ready": 0})
    else:
        status.pop("active", None)
        status.pop("ready", None)
        status.update({"succeeded": 1, "completionTime": now, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "lastProbeTime": now, "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "lastProbeTime": now, "lastTransitionTime": now},
        ]})
    updated = copy.deepcopy(job)
    updated["status"] = status
    return updated
