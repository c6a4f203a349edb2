"""Job lifecycle: every sandbox Job starts on one tick and succeeds on the next.

A Job (or a CronJob's jobTemplate) can ask for another ending with the
annotation `sandbox.zerotouch.io/job-outcome`: "Failed" fails it on its second
tick instead, "Running" keeps it running until a test ends it with
`finish()` (SandboxCluster.finish_job) or by writing its status subresource.
"""

from __future__ import annotations

import copy
from typing import Any

from .store import now_iso

OUTCOME_ANNOTATION = "sandbox.zerotouch.io/job-outcome"
COMPLETE = "Complete"
FAILED = "Failed"
RUNNING = "Running"
OUTCOMES = (COMPLETE, FAILED, RUNNING)


def finished(job: dict[str, Any]) -> str | None:
    """COMPLETE or FAILED once the Job has ended, else None."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in (COMPLETE, FAILED):
            return str(cond["type"])
    if status.get("succeeded"):
        return COMPLETE
    if status.get("failed") and not status.get("active"):
        return FAILED
    return None


def _outcome(job: dict[str, Any]) -> str:
    wanted = ((job.get("metadata") or {}).get("annotations") or {}).get(OUTCOME_ANNOTATION)
    return wanted if wanted in OUTCOMES else COMPLETE


def advance(job: dict[str, Any], now: str | None = None) -> dict[str, Any] | None:
    """The job one step further along, or None when there is nothing to do."""
    status = job.get("status") or {}
    if status.get("succeeded") or status.get("failed") or finished(job):
        return None
    now = now or now_iso()
    if not status.get("active"):
        status = {**copy.deepcopy(status), "active": 1, "startTime": now, "ready": 0}
        updated = copy.deepcopy(job)
        updated["status"] = status
        return updated
    outcome = _outcome(job)
    return None if outcome == RUNNING else finish(job, outcome, now)


def finish(job: dict[str, Any], outcome: str, now: str | None = None) -> dict[str, Any]:
    """The job ended as `outcome` (COMPLETE or FAILED), with the status the Job controller writes."""
    if outcome not in (COMPLETE, FAILED):
        raise ValueError(f"a job finishes as {COMPLETE!r} or {FAILED!r}, not {outcome!r}")
    now = now or now_iso()
    status = copy.deepcopy(job.get("status") or {})
    status.pop("active", None)
    status.pop("ready", None)
    status.setdefault("startTime", now)
    if outcome == COMPLETE:
        status.update({"succeeded": 1, "completionTime": now, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods",
             "lastProbeTime": now, "lastTransitionTime": now},
            {"type": COMPLETE, "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods",
             "lastProbeTime": now, "lastTransitionTime": now},
        ]})
    else:
        status.update({"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit",
             "lastProbeTime": now, "lastTransitionTime": now},
            {"type": FAILED, "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit",
             "lastProbeTime": now, "lastTransitionTime": now},
        ]})
    updated = copy.deepcopy(job)
    updated["status"] = status
    return updated
