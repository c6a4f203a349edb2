"""cAdvisor's container series (/metrics/cadvisor on a kubelet), for every started container.

One page for the whole cluster: a real kubelet serves only its node's containers,
and the scrape's `instance` label tells them apart; here the pod label already
does. CFS periods count 10 per second since the pod started (the default 100ms
period); 5% of them are throttled, 60% under the overload fault, so
CPUThrottlingHigh has something to find. The working set sits at 45% of the memory
limit, 98% while the container is being OOM-killed.
"""

from __future__ import annotations

import time

from ..clock import parse_iso
from ..quantity import parse_quantity
from ..resources import get_type
from .exposition import Registry, Scrape

_PODS = get_type("", "pods")
PERIODS_PER_SECOND = 10
THROTTLED = 0.05
THROTTLED_OVERLOADED = 0.6
DEFAULT_MEMORY = 128 * 2**20
WORKING_SET_SHARE = 0.45  # of the memory limit: comfortably below KubeContainerMemoryNearLimit (85%)


def collect(scrape: Scrape, reg: Registry) -> None:
    periods = reg.counter("container_cpu_cfs_periods_total",
                          "Number of elapsed enforcement period intervals.")
    throttled = reg.counter("container_cpu_cfs_throttled_periods_total",
                            "Number of throttled period intervals.")
    memory = reg.gauge("container_memory_working_set_bytes",
                       "Current working set of the container in bytes")
    now = time.time()  # pod start times are wall-clock, like the kubelet's
    for pod in scrape.store.list(_PODS):
        meta, status = pod["metadata"], pod.get("status") or {}
        started = parse_iso(status.get("startTime"))
        if started is None:
            continue
        ns, name = meta["namespace"], meta["name"]
        owner = next((r["name"] for r in meta.get("ownerReferences") or []), "")
        deployment = owner.rsplit("-", 1)[0]
        overloaded = scrape.faults.has("overload", ns, deployment)
        elapsed = max(0.0, now - started.timestamp())
        specs = {c["name"]: c for c in pod["spec"].get("containers") or []}
        for cs in status.get("containerStatuses") or []:
            container_id = cs.get("containerID", "")
            if not container_id:
                continue  # not started yet: cAdvisor has no cgroup for it
            spec = specs.get(cs["name"]) or {}
            labels = {"container": cs["name"], "id": f"/kubepods/pod{meta['uid']}/"
                      f"{container_id.rsplit('/', 1)[-1]}", "image": cs.get("image", ""),
                      "name": container_id.rsplit("/", 1)[-1], "namespace": ns, "pod": name}
            count = int(elapsed * PERIODS_PER_SECOND)
            periods.add(labels, count)
            throttled.add(labels, int(count * (THROTTLED_OVERLOADED if overloaded else THROTTLED)))
            limit = parse_quantity(((spec.get("resources") or {}).get("limits") or {})
                                   .get("memory")) or DEFAULT_MEMORY
            # The working set is sampled between kills: a restarted container starts small, and the
            # kill itself shows in kube_pod_container_status_last_terminated_reason. (Reporting it near
            # the limit would also fire KubeContainerMemoryNearLimit: a second incident raising memory.)
            memory.add(labels, int(limit * WORKING_SET_SHARE))
