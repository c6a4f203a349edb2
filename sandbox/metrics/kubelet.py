"""The kubelet's volume series (/metrics on a kubelet), for every PersistentVolumeClaim.

Labels are the kubelet's own: namespace and persistentvolumeclaim. A claim at rest
is 35% used; under the volume-filling fault its free space starts below 3% of
capacity and halves every five minutes of sandbox time, so both the critical
(`available/capacity < 0.03`) and the predict_linear rules of
KubePersistentVolumeFillingUp see it.
"""

from __future__ import annotations

from ..faults import volume_request
from ..resources import get_type
from .exposition import Registry, Scrape

_PVCS = get_type("", "persistentvolumeclaims")
RESTING_USED = 0.35
FILLING_START = 0.029  # free fraction at injection: just under the critical 3%
FILLING_HALF_LIFE_SECONDS = 300.0
INODES_PER_GIB = 65536


def free_fraction(scrape: Scrape, namespace: str, claim: str) -> float:
    fault = scrape.faults.filling(namespace, claim)
    if fault is None:
        return 1 - RESTING_USED
    elapsed = max(0.0, scrape.store.clock.time() - fault.clock_at)
    return FILLING_START * 0.5 ** (elapsed / FILLING_HALF_LIFE_SECONDS)


def collect(scrape: Scrape, reg: Registry) -> None:
    capacity = reg.gauge("kubelet_volume_stats_capacity_bytes", "Capacity in bytes of the volume.")
    available = reg.gauge("kubelet_volume_stats_available_bytes",
                          "Number of available bytes in the volume.")
    used = reg.gauge("kubelet_volume_stats_used_bytes", "Number of used bytes in the volume.")
    inodes = reg.gauge("kubelet_volume_stats_inodes", "Maximum number of inodes in the volume.")
    inodes_free = reg.gauge("kubelet_volume_stats_inodes_free",
                            "Number of free inodes in the volume.")
    inodes_used = reg.gauge("kubelet_volume_stats_inodes_used",
                            "Number of used inodes in the volume.")
    for pvc in scrape.store.list(_PVCS):
        if (pvc.get("status") or {}).get("phase") != "Bound":
            continue  # the kubelet only reports volumes mounted by a running pod
        ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        labels = {"namespace": ns, "persistentvolumeclaim": name}
        size = volume_request(pvc) or 2.0**30
        free = int(size * free_fraction(scrape, ns, name))
        capacity.add(labels, int(size))
        available.add(labels, free)
        used.add(labels, int(size) - free)
        total_inodes = max(1, int(size / 2**30 * INODES_PER_GIB))
        inodes.add(labels, total_inodes)
        inodes_used.add(labels, total_inodes // 20)
        inodes_free.add(labels, total_inodes - total_inodes // 20)
