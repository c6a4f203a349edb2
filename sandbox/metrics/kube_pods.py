"""kube-state-metrics' pod series (internal/store/pod.go): names, labels, omissions."""

from __future__ import annotations

from typing import Any

from .. import pods
from ..quantity import parse_quantity
from ..resources import get_type
from .exposition import Registry, Scrape, owner_labels

_PODS = get_type("", "pods")
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
# resource name -> unit, as kube-state-metrics labels container requests and limits
_UNITS = {"cpu": "core", "memory": "byte", "ephemeral-storage": "byte"}


def collect(scrape: Scrape, reg: Registry) -> None:
    restarts = reg.counter("kube_pod_container_status_restarts_total",
                           "The number of container restarts per container.")
    waiting = reg.gauge("kube_pod_container_status_waiting_reason",
                        "Describes the reason the container is currently in waiting state.")
    terminated = reg.gauge("kube_pod_container_status_last_terminated_reason",
                           "Describes the last reason the container was in terminated state.")
    c_ready = reg.gauge("kube_pod_container_status_ready",
                        "Describes whether the containers readiness check succeeded.")
    p_ready = reg.gauge("kube_pod_status_ready", "Describes whether the pod is ready.")
    phase = reg.gauge("kube_pod_status_phase", "The pods current phase.")
    pod_reason = reg.gauge("kube_pod_status_reason", "The pod status reasons")
    owner = reg.gauge("kube_pod_owner", "Information about the Pod's owner.")
    info = reg.gauge("kube_pod_info", "Information about pod.")
    limits = reg.gauge("kube_pod_container_resource_limits",
                       "The number of requested limit resource by a container.")
    requests = reg.gauge("kube_pod_container_resource_requests",
                         "The number of requested request resource by a container.")
    for pod in scrape.store.list(_PODS):
        meta, status = pod["metadata"], pod.get("status") or {}
        base = {"namespace": meta["namespace"], "pod": meta["name"], "uid": meta["uid"]}
        refs = meta.get("ownerReferences") or []
        for cs in status.get("containerStatuses") or []:
            cl = {**base, "container": cs["name"]}
            restarts.add(cl, cs.get("restartCount", 0))
            c_ready.add(cl, 1 if cs.get("ready") else 0)
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                waiting.add({**cl, "reason": reason}, 1)
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
            if last:
                terminated.add({**cl, "reason": last}, 1)
        node = pod["spec"].get("nodeName", "")
        for c in pod["spec"].get("containers") or []:
            cl = {**base, "container": c["name"], "node": node}
            resources = c.get("resources") or {}
            _resources(requests, cl, resources.get("requests") or {})
            _resources(limits, cl, resources.get("limits") or {})
        ready = pods.is_ready(pod)
        for cond in ("true", "false"):
            p_ready.add({**base, "condition": cond}, 1 if (cond == "true") == ready else 0)
        for ph in PHASES:
            phase.add({**base, "phase": ph}, 1 if status.get("phase") == ph else 0)
        for why in STATUS_REASONS:  # KubePodNotReady ignores pods held back on purpose (SchedulingGated)
            pod_reason.add({**base, "reason": why}, 1 if status.get("reason") == why else 0)
        for ref in refs or [None]:
            owner.add({**base, **owner_labels(ref)}, 1)
        creator = next((r for r in refs if r.get("controller")), None)
        info.add({**base, "host_ip": status.get("hostIP", ""), "pod_ip": status.get("podIP", ""),
                  "node": node, "created_by_kind": creator["kind"] if creator else "<none>",
                  "created_by_name": creator["name"] if creator else "<none>",
                  "priority_class": pod["spec"].get("priorityClassName", ""),
                  "host_network": "true" if pod["spec"].get("hostNetwork") else "false"}, 1)


# kube-state-metrics v2's fixed set: every pod gets each, 1 for its status.reason.
STATUS_REASONS = ("Evicted", "NodeAffinity", "NodeLost", "Shutdown", "UnexpectedAdmissionError", "SchedulingGated")


def _resources(family: Any, labels: dict[str, str], values: dict[str, Any]) -> None:
    for resource, raw in sorted(values.items()):
        amount = parse_quantity(raw)
        if amount is None:
            continue
        unit = _UNITS.get(resource, "integer")
        family.add({**labels, "resource": resource.replace("-", "_"), "unit": unit}, amount)
