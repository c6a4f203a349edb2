"""Application series the demo shop would export itself, synthesised from faults:
HTTP traffic, consumer lag and the per-Deployment `<name>-data` volume usage that
the disk-pressure fault fills (zerotouch's own rules read these from /metrics)."""

from __future__ import annotations

from ..resources import get_type
from .exposition import Registry, Scrape

VOLUME_CAPACITY = 10 * 2**30
_DEPLOY = get_type("apps", "deployments")


def collect(scrape: Scrape, reg: Registry) -> None:
    requests = reg.counter("http_requests_total", "HTTP requests served, by status code.")
    lag = reg.gauge("kafka_consumergroup_lag", "Consumer group lag in messages.")
    used = reg.gauge("kubelet_volume_stats_used_bytes", "Number of used bytes in the volume.")
    capacity = reg.gauge("kubelet_volume_stats_capacity_bytes", "Capacity in bytes of the volume.")
    for labels, value in scrape.traffic.samples():
        requests.add(labels, int(value))
    for deploy in scrape.store.list(_DEPLOY):
        ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        base = {"namespace": ns, "deployment": name}
        lag.add({**base, "consumergroup": name, "topic": f"{name}-events"},
                20000 if scrape.faults.has("overload", ns, name) else 100)
        pvc = {**base, "persistentvolumeclaim": f"{name}-data"}
        ratio = 0.9 if scrape.faults.has("disk-pressure", ns, name) else 0.35
        used.add(pvc, int(VOLUME_CAPACITY * ratio))
        capacity.add(pvc, VOLUME_CAPACITY)
