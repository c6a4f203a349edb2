"""kube-state-metrics' node and PersistentVolumeClaim series (internal/store/node.go, pvc.go)."""

from __future__ import annotations

from ..quantity import parse_quantity
from ..resources import get_type
from .exposition import Registry, Scrape, bool_series

_NODES = get_type("", "nodes")
_PVCS = get_type("", "persistentvolumeclaims")
_UNITS = {"cpu": "core", "memory": "byte", "ephemeral-storage": "byte", "pods": "integer"}


def collect(scrape: Scrape, reg: Registry) -> None:
    _nodes(scrape, reg)
    _claims(scrape, reg)


def _nodes(scrape: Scrape, reg: Registry) -> None:
    cond = reg.gauge("kube_node_status_condition", "The condition of a cluster node.")
    info = reg.gauge("kube_node_info", "Information about a cluster node.")
    unschedulable = reg.gauge("kube_node_spec_unschedulable",
                              "Whether a node can schedule new pods.")
    allocatable = reg.gauge("kube_node_status_allocatable",
                            "The allocatable for different resources of a node that are "
                            "available for scheduling.")
    capacity = reg.gauge("kube_node_status_capacity",
                         "The capacity for different resources of a node.")
    # KubeNodeUnreachable (kube-prometheus) reads the unreachable taint from this family.
    taint = reg.gauge("kube_node_spec_taint", "The taint of a cluster node.")
    for node in scrape.store.list(_NODES):
        name = node["metadata"]["name"]
        spec, status = node.get("spec") or {}, node.get("status") or {}
        for c in status.get("conditions") or []:
            value = {"true": True, "false": False}.get(c.get("status", "").lower())
            bool_series(cond, {"node": name, "condition": c["type"]}, value)
        node_info = status.get("nodeInfo") or {}
        internal = next((a["address"] for a in status.get("addresses") or []
                         if a.get("type") == "InternalIP"), "")
        info.add({"node": name, "kernel_version": node_info.get("kernelVersion", ""),
                  "os_image": node_info.get("osImage", ""),
                  "container_runtime_version": node_info.get("containerRuntimeVersion", ""),
                  "kubelet_version": node_info.get("kubeletVersion", ""),
                  "kubeproxy_version": node_info.get("kubeProxyVersion", ""),
                  "provider_id": spec.get("providerID", ""), "pod_cidr": spec.get("podCIDR", ""),
                  "system_uuid": node_info.get("systemUUID", ""), "internal_ip": internal}, 1)
        unschedulable.add({"node": name}, 1 if spec.get("unschedulable") else 0)
        for t in spec.get("taints") or []:
            taint.add({"node": name, "key": t.get("key", ""), "value": t.get("value", ""),
                       "effect": t.get("effect", "")}, 1)
        for family, key in ((allocatable, "allocatable"), (capacity, "capacity")):
            for resource, raw in sorted((status.get(key) or {}).items()):
                amount = parse_quantity(raw)
                if amount is not None:
                    family.add({"node": name, "resource": resource.replace("-", "_"),
                                "unit": _UNITS.get(resource, "integer")}, amount)


def _claims(scrape: Scrape, reg: Registry) -> None:
    access = reg.gauge("kube_persistentvolumeclaim_access_mode",
                       "The access mode(s) specified by the persistent volume claim.")
    # No label_* labels: kube-state-metrics v2 only exports allowlisted ones, none by default.
    labels_family = reg.gauge("kube_persistentvolumeclaim_labels",
                              "Kubernetes labels converted to Prometheus labels.")
    phase = reg.gauge("kube_persistentvolumeclaim_status_phase",
                      "The phase the persistent volume claim is currently in.")
    requested = reg.gauge("kube_persistentvolumeclaim_resource_requests_storage_bytes",
                          "The capacity of storage requested by the persistent volume claim.")
    for pvc in scrape.store.list(_PVCS):
        base = {"namespace": pvc["metadata"]["namespace"],
                "persistentvolumeclaim": pvc["metadata"]["name"]}
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        for mode in spec.get("accessModes") or []:
            access.add({**base, "access_mode": mode}, 1)
        labels_family.add(base, 1)
        for value in ("Lost", "Bound", "Pending"):
            phase.add({**base, "phase": value}, 1 if status.get("phase") == value else 0)
        storage = parse_quantity(((spec.get("resources") or {}).get("requests") or {})
                                 .get("storage"))
        if storage is not None:
            requested.add(base, storage)
