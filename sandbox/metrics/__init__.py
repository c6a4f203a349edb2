"""Prometheus scrape pages, one per exporter a real cluster runs.

- /metrics/kube-state-metrics  kube_* series (kube_pods, kube_workloads, kube_batch, kube_nodes)
- /metrics/kubelet             kubelet_volume_stats_* (kubelet)
- /metrics/cadvisor            container_* (cadvisor)
- /metrics/node-exporter       node_filesystem_* of the first node (node_exporter)
- /metrics                     all of the above plus the demo shop's own series (app), as
                               before the split; zerotouch's own rules and tests read it.

Cluster-state series use kube-state-metrics v2 names and labels, so the stock
kube-prometheus rules evaluate unchanged.
"""

from __future__ import annotations

from ..faults import FaultManager
from ..store import Store
from . import app, cadvisor, kube_batch, kube_nodes, kube_pods, kube_workloads, kubelet, node_exporter
from .exposition import Collector, Registry, Scrape
from .traffic import TrafficCounters

ENDPOINTS: dict[str, tuple[Collector, ...]] = {
    "kube-state-metrics": (kube_pods.collect, kube_workloads.collect, kube_batch.collect,
                           kube_nodes.collect),
    "kubelet": (kubelet.collect,),
    "cadvisor": (cadvisor.collect,),
    "node-exporter": (node_exporter.collect,),
}
# /metrics: everything. The app's legacy volume series first, so their HELP heads the
# kubelet_volume_stats_* blocks the kubelet's samples join.
EVERYTHING: tuple[Collector, ...] = (
    ENDPOINTS["kube-state-metrics"] + (app.collect,) + ENDPOINTS["kubelet"]
    + ENDPOINTS["cadvisor"] + ENDPOINTS["node-exporter"])

__all__ = ["ENDPOINTS", "TrafficCounters", "render", "render_endpoint"]


def _render(collectors: tuple[Collector, ...], store: Store, faults: FaultManager,
            traffic: TrafficCounters) -> str:
    reg = Registry()
    scrape = Scrape(store, faults, traffic)
    with store.lock:
        for collect in collectors:
            collect(scrape, reg)
    return reg.render()


def render(store: Store, faults: FaultManager, traffic: TrafficCounters) -> str:
    """The /metrics page: every series the sandbox exports."""
    return _render(EVERYTHING, store, faults, traffic)


def render_endpoint(name: str, store: Store, faults: FaultManager,
                    traffic: TrafficCounters) -> str:
    """One exporter's page; KeyError for a name not in ENDPOINTS."""
    return _render(ENDPOINTS[name], store, faults, traffic)
