"""Pod objects and the status a kubelet would report for them.

A pod's health is one of a few named conditions decided by the fault
manager; this module only knows how each condition looks in pod status.
"""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

from .store import now_iso

# Same alphabet as Kubernetes' rand.String: no vowels, so no accidental words.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

HEALTHY = "healthy"
CRASH = "crash"  # CrashLoopBackOff, last terminated with Error
OOM = "oom"  # CrashLoopBackOff, last terminated OOMKilled
UNREADY = "unready"  # running but failing readiness
PENDING = "pending"  # never starts: Pending, waiting in ContainerCreating
IMAGE_PULL = "image-pull"  # image cannot be pulled: Pending, waiting in ImagePullBackOff

_rng = random.SystemRandom()


def random_suffix(length: int = 5) -> str:
    return "".join(_rng.choice(SAFE_ALPHABET) for _ in range(length))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_pod(rs: dict[str, Any], node: str | None, ip: str) -> dict[str, Any]:
    """A pod for `rs`, as the ReplicaSet controller would create it."""
    name = f"{rs['metadata']['name']}-{random_suffix()}"
    return owned_pod(rs, "apps/v1", rs["spec"]["template"], name, node, ip)


def owned_pod(owner: dict[str, Any], api_version: str, template: dict[str, Any], name: str,
              node: str | None, ip: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A pod from `template`, controlled by `owner` (ReplicaSet, StatefulSet, DaemonSet, Job);
    with no `node` it waits unscheduled (scheduling.py binds it once a node can take it)."""
    meta = owner["metadata"]
    template = copy.deepcopy(template)
    spec = template.get("spec", {})
    if node:
        spec["nodeName"] = node
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    return {
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                       **(labels or {})},
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [{
                "apiVersion": api_version, "kind": owner["kind"], "name": meta["name"],
                "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": spec,
        "status": pending_status(spec, ip) if node else unscheduled_status(),
    }


def unscheduled_status(message: str = "0/0 nodes are available.") -> dict[str, Any]:
    """What kube-scheduler leaves on a pod no node can take: Pending, no node, no IP."""
    return {"phase": "Pending", "qosClass": "Burstable", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastProbeTime": None, "lastTransitionTime": now_iso()}]}


def pending_status(spec: dict[str, Any], ip: str) -> dict[str, Any]:
    now = now_iso()
    return {
        "phase": "Pending",
        "hostIP": _host_ip(spec.get("nodeName", "")),
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "qosClass": "Burstable",
        "startTime": now,
        "conditions": _conditions(False, now),
        "containerStatuses": [
            {
                "name": c["name"], "image": c.get("image", ""), "imageID": "",
                "ready": False, "started": False, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
            }
            for c in spec.get("containers", [])
        ],
    }


def _host_ip(node: str) -> str:
    digits = "".join(ch for ch in node if ch.isdigit()) or "1"
    return f"10.0.0.{int(digits) + 10}"


def _conditions(ready: bool, now: str) -> list[dict[str, Any]]:
    value = "True" if ready else "False"
    conds = [
        {"type": "PodReadyToStartContainers", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": value},
        {"type": "ContainersReady", "status": value},
        {"type": "PodScheduled", "status": "True"},
    ]
    for cond in conds:
        cond["lastProbeTime"] = None  # type: ignore[assignment]
        cond["lastTransitionTime"] = now
        if cond["status"] == "False":
            cond["reason"] = "ContainersNotReady"
    return conds


def _keep_transitions(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Only move lastTransitionTime when a condition actually flips."""
    before = {c["type"]: c for c in old}
    for cond in new:
        prev = before.get(cond["type"])
        if prev and prev.get("status") == cond["status"]:
            cond["lastTransitionTime"] = prev.get("lastTransitionTime")


def apply_condition(pod: dict[str, Any], condition: str) -> dict[str, Any]:
    """Return a copy of `pod` whose status reflects `condition` one tick on."""
    if condition in (PENDING, IMAGE_PULL):
        return _still_waiting(pod, condition)
    pod = copy.deepcopy(pod)
    status = pod["status"]
    now = now_iso()
    ready = condition == HEALTHY
    old_conditions = status.get("conditions", [])
    status["phase"] = "Running"
    status["conditions"] = _conditions(ready, now)
    _keep_transitions(old_conditions, status["conditions"])
    by_name = {c["name"]: c for c in status.get("containerStatuses", [])}
    statuses = []
    for container in pod["spec"].get("containers", []):
        name = container["name"]
        cs = copy.deepcopy(by_name.get(name) or {"name": name, "restartCount": 0})
        image = container.get("image", "")
        cs["image"] = image
        cs["imageID"] = f"{image.split(':')[0]}@sha256:{_digest(image)}"
        cs.setdefault("containerID", f"containerd://{_digest(pod['metadata']['name'] + name)}")
        cs.setdefault("lastState", {})  # the API always serialises it, possibly empty
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if condition in (CRASH, OOM):
            # Each tick is one more failed start: the kubelet restarted it and
            # it died again, so the counter and the last termination advance.
            cs["restartCount"] = int(cs.get("restartCount", 0)) + 1
            cs["lastState"] = {"terminated": {
                "exitCode": 137 if condition == OOM else 1,
                "reason": "OOMKilled" if condition == OOM else "Error",
                "startedAt": now, "finishedAt": now, "containerID": cs["containerID"],
            }}
            cs["state"] = {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container={name} "
                           f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}",
            }}
            cs["ready"], cs["started"] = False, False
        else:
            running = (cs.get("state") or {}).get("running")
            if not running or waiting:
                running = {"startedAt": now}
            cs["state"] = {"running": running}
            cs["ready"], cs["started"] = ready, True
        statuses.append(cs)
    status["containerStatuses"] = statuses
    return pod


def _still_waiting(pod: dict[str, Any], condition: str) -> dict[str, Any]:
    """A pod whose containers never start: the kubelet keeps it Pending and says why."""
    pod = copy.deepcopy(pod)
    status = pod["status"]
    old_conditions = status.get("conditions", [])
    status["phase"] = "Pending"
    status["conditions"] = _conditions(False, now_iso())
    _keep_transitions(old_conditions, status["conditions"])
    by_name = {c["name"]: c for c in status.get("containerStatuses", [])}
    statuses = []
    for container in pod["spec"].get("containers", []):
        name, image = container["name"], container.get("image", "")
        waiting = {"reason": "ContainerCreating"} if condition == PENDING else {
            "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
        statuses.append({
            "name": name, "image": image, "imageID": "", "ready": False, "started": False,
            "restartCount": int((by_name.get(name) or {}).get("restartCount", 0)),
            "state": {"waiting": waiting}, "lastState": {}})
    status["containerStatuses"] = statuses
    return pod


def is_ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions", []):
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False
