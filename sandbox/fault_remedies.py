"""Has a fault been repaired? Each kind compares the cluster with what its injection recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import templates
from .quantity import parse_quantity
from .resources import get_type
from .store import Obj, Store

if TYPE_CHECKING:
    from .faults import Fault

CLEANUP_JOB_LABEL = "zerotouch.io/job"
CLEANUP_JOB_VALUE = "log-cleanup"
JOBS = get_type("batch", "jobs")


def remedy(store: Store, fault: Fault, obj: Obj) -> str:
    """Name of the remedy that has been applied to `obj`, or "" while still broken."""
    if fault.kind == "volume-filling":
        wanted = (((obj.get("spec") or {}).get("resources") or {}).get("requests") or {})
        size = parse_quantity(wanted.get("storage")) or 0.0
        return "volume expanded" if size > fault.volume_bytes else ""
    template = obj["spec"]["template"]
    if fault.kind in ("crashloop", "stuck-pending"):
        if templates.template_hash(template) != fault.template_hash:
            return "new pod template"
    elif fault.kind == "oom":
        limit = templates.memory_limit(template) or 0
        if limit >= fault.memory_required_bytes:
            return "memory limit raised"
    elif fault.kind in ("bad-deploy", "stuck-rollout"):
        # A restart of the broken revision keeps its images: only going back helps.
        if not set(templates.images(template).values()) & set(fault.bad_images):
            return "rolled back"
    elif fault.kind == "overload":
        if int(obj["spec"].get("replicas", 0)) >= fault.required_replicas:
            return "scaled up"
    elif fault.kind == "disk-pressure":
        return _cleanup_done(store, fault)
    return ""


def _cleanup_done(store: Store, fault: Fault) -> str:
    for job in store.list(JOBS, fault.namespace):
        labels = job["metadata"].get("labels") or {}
        if (labels.get(CLEANUP_JOB_LABEL) == CLEANUP_JOB_VALUE
                and job["metadata"]["uid"] not in fault.jobs_before
                and int((job.get("status") or {}).get("succeeded") or 0) >= 1):
            return "cleanup job succeeded"
    return ""
