"""The workloads a fresh sandbox starts with: a small shop on three nodes.

Besides the Deployments: a StatefulSet `shop/db` (pods db-0, db-1, claims
data-db-0, data-db-1), a DaemonSet `kube-system/node-agent` (a pod per node),
a bare pod `shop/debug` with no owner, and `shop/web-api`, whose name shares
`web`'s prefix so pod-to-owner mapping by name prefix is caught out.
"""

from __future__ import annotations

import base64
from typing import Any

from .resources import get_type
from .store import Store
from .validation import default_cronjob, default_daemonset, default_deployment, default_statefulset

NODE_NAMES = ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3")
NAMESPACES = ("default", "kube-system", "kube-public", "shop")

# name, replicas, image, memory limit, container port
SHOP = (
    ("web", 3, "registry.local/shop/web:1.4.2", "256Mi", 8080),
    ("checkout", 2, "registry.local/shop/checkout:2.7.0", "512Mi", 8080),
    ("email-worker", 1, "registry.local/shop/email-worker:0.9.3", "128Mi", 0),
    ("web-api", 1, "registry.local/shop/web-api:1.0.1", "256Mi", 8080),
)
DB_VOLUME = "1Gi"


def namespace(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def node(name: str, index: int) -> dict[str, Any]:
    resources = {"cpu": "4", "memory": "16374136Ki", "pods": "110",
                 "ephemeral-storage": "102350Mi"}
    allocatable = {**resources, "cpu": "3800m", "memory": "15247736Ki"}
    conditions = [
        (kind, "False", f"KubeletHas{label}", f"kubelet has {label.lower()}")
        for kind, label in (("MemoryPressure", "SufficientMemory"),
                            ("DiskPressure", "NoDiskPressure"),
                            ("PIDPressure", "SufficientPID"))
    ] + [("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
    return {
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": f"sandbox-{index}"}},
        "spec": {"podCIDR": f"10.244.{index}.0/24"},
        "status": {
            "capacity": resources, "allocatable": allocatable,
            "addresses": [{"type": "InternalIP", "address": f"10.0.0.{index + 10}"},
                          {"type": "Hostname", "address": name}],
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m,
                 "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                 "lastTransitionTime": "2024-01-01T00:00:00Z"}
                for t, s, r, m in conditions],
            "nodeInfo": {
                "architecture": "amd64", "bootID": f"sandbox-boot-{index}",
                "containerRuntimeVersion": "containerd://1.7.13",
                "kernelVersion": "6.1.0-sandbox", "kubeProxyVersion": "v1.30.0",
                "kubeletVersion": "v1.30.0", "machineID": f"sandbox-machine-{index}",
                "operatingSystem": "linux", "osImage": "Zerotouch Sandbox OS",
                "systemUUID": f"00000000-0000-0000-0000-00000000000{index}"},
        },
    }


def deployment(name: str, replicas: int, image: str, memory: str, port: int) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "100m", "memory": memory},
                      "limits": {"memory": memory}},
    }
    if port:
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    if name == "checkout":  # its database credentials come from the checkout-db Secret
        container["env"] = [{"name": f"DB_{key.upper()}", "valueFrom": {"secretKeyRef": {"name": "checkout-db",
                                                                                          "key": key}}}
                            for key in ("username", "password")]
    obj = {
        "metadata": {"name": name, "namespace": "shop",
                     "labels": {"app": name, "app.kubernetes.io/part-of": "shop"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [container]}},
        },
    }
    default_deployment(obj)
    return obj


def _container(name: str, image: str, memory: str, cpu: str = "100m") -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}}


def database() -> dict[str, Any]:
    """shop/db: two replicas, each with its own claim from the volumeClaimTemplate."""
    container = _container("db", "registry.local/shop/db:15.4", "1Gi", "250m")
    container["ports"] = [{"name": "postgres", "containerPort": 5432, "protocol": "TCP"}]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]
    obj: dict[str, Any] = {
        "metadata": {"name": "db", "namespace": "shop",
                     "labels": {"app": "db", "app.kubernetes.io/part-of": "shop"}},
        "spec": {
            "replicas": 2, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [container]}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": DB_VOLUME}}}}],
        },
    }
    default_statefulset(obj)
    return obj


def node_agent() -> dict[str, Any]:
    """kube-system/node-agent: one pod per node, as a log or metrics agent runs."""
    obj: dict[str, Any] = {
        "metadata": {"name": "node-agent", "namespace": "kube-system",
                     "labels": {"app": "node-agent"}},
        "spec": {
            "selector": {"matchLabels": {"app": "node-agent"}},
            "template": {"metadata": {"labels": {"app": "node-agent"}}, "spec": {
                "containers": [_container("agent", "registry.local/infra/node-agent:2.3.1",
                                          "64Mi", "50m")]}},
        },
    }
    default_daemonset(obj)
    return obj


def debug_pod() -> dict[str, Any]:
    """shop/debug: created by hand (`kubectl run`), so it has no owner."""
    return {"metadata": {"name": "debug", "namespace": "shop", "labels": {"run": "debug"}},
            "spec": {"restartPolicy": "Always", "containers": [
                {**_container("debug", "registry.local/tools/netshoot:0.11", "64Mi", "10m"),
                 "command": ["sleep", "infinity"]}]}}


def nightly_report() -> dict[str, Any]:
    """A CronJob to hand over to a Temporal Schedule. Suspended: a live daily schedule would
    add a Job to `shop` whenever a test happened to run across 02:00 UTC (tests list the
    Jobs there); unsuspend it (patch spec.suspend=false) to watch it run. The deadline
    keeps an unsuspend from starting a catch-up run for a day missed long ago."""
    obj: dict[str, Any] = {
        "metadata": {"name": "nightly-report", "namespace": "shop",
                     "labels": {"app": "nightly-report", "app.kubernetes.io/part-of": "shop"}},
        "spec": {
            "schedule": "0 2 * * *",
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
            "suspend": True,
            "jobTemplate": {
                "metadata": {"labels": {"app": "nightly-report"}},
                "spec": {"backoffLimit": 2, "template": {
                    "metadata": {"labels": {"app": "nightly-report"}},
                    "spec": {"restartPolicy": "OnFailure", "containers": [{
                        "name": "report", "image": "registry.local/shop/report:1.0.0",
                        "args": ["--since=24h", "--to=s3://shop-reports/nightly/"],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"memory": "128Mi"}},
                    }]},
                }},
            },
        },
        "status": {},
    }
    default_cronjob(obj)
    return obj


def seed(store: Store) -> None:
    """Populate an empty store; the controller creates RSs and pods after."""
    for name in NAMESPACES:
        store.create(get_type("", "namespaces"), namespace(name))
    for i, name in enumerate(NODE_NAMES, start=1):
        store.create(get_type("", "nodes"), node(name, i))
    for spec in SHOP:
        store.create(get_type("apps", "deployments"), deployment(*spec))
    store.create(get_type("apps", "statefulsets"), database())
    store.create(get_type("apps", "daemonsets"), node_agent())
    store.create(get_type("", "pods"), debug_pod())
    store.create(get_type("batch", "cronjobs"), nightly_report())
    store.create(get_type("policy", "poddisruptionbudgets"), {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    })
    store.create(get_type("", "secrets"), {
        "metadata": {"name": "checkout-db", "namespace": "shop"},
        "type": "Opaque",
        "data": {"username": base64.b64encode(b"shop").decode(),
                 "password": base64.b64encode(b"sandbox-only").decode()},
    })
