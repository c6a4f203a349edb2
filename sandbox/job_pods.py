"""The pod each sandbox Job runs: `<job>-<5 safe chars>`, controlled by its Job.

One pod per Job (completions 1, no retries), created when the Job starts and
taken to Succeeded or Failed when the Job ends, with the labels the Job
controller sets so `kubectl logs job/x` style selectors and kube_pod_owner
(owner_kind="Job") see what a real cluster shows.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from . import jobs, pods
from .ownership import pods_of
from .resources import get_type
from .scheduling import Scheduler, kubelet_status
from .store import Obj, Store, now_iso

PODS = get_type("", "pods")


def job_labels(job: Obj) -> dict[str, str]:
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    return {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name}


def sync(store: Store, job: Obj, *, next_ip: Callable[[], str], scheduler: Scheduler) -> None:
    """Bring the Job's pod in line with the Job's status."""
    owned = pods_of(store, job)
    ended = jobs.finished(job)
    status = job.get("status") or {}
    if not owned:
        if ended or not status.get("active"):
            return
        template = (job.get("spec") or {}).get("template") or {}
        node = scheduler.pick([])
        pod = pods.owned_pod(job, "batch/v1", template, f"{job['metadata']['name']}-"
                             f"{pods.random_suffix()}", node, next_ip(), job_labels(job))
        store.create(PODS, pod)
        return
    for pod in owned:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        if ended:
            store.update(PODS, _terminated(pod, ended == jobs.COMPLETE), check_version=False)
        else:
            store.update(PODS, kubelet_status(store, pod, pods.HEALTHY), check_version=False)


def _terminated(pod: Obj, succeeded: bool) -> Obj:
    pod = copy.deepcopy(pod)
    status = pod["status"]
    now = now_iso()
    status["phase"] = "Succeeded" if succeeded else "Failed"
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Ready", "ContainersReady"):
            cond.update({"status": "False", "reason": "PodCompleted" if succeeded else "PodFailed",
                         "lastTransitionTime": now})
    for cs in status.get("containerStatuses") or []:
        cs.update({"ready": False, "started": False, "state": {"terminated": {
            "exitCode": 0 if succeeded else 1, "reason": "Completed" if succeeded else "Error",
            "startedAt": (cs.get("state") or {}).get("running", {}).get("startedAt", now),
            "finishedAt": now}}})
    return pod
