"""node-exporter's filesystem series for one machine: the first node's.

node-exporter runs on each node and reports only its own machine, with no node
label (the scrape adds `instance`); the sandbox serves one page, so it is the
first node's (sandbox-node-1), with its root and boot filesystems.
"""

from __future__ import annotations

from ..quantity import parse_quantity
from ..resources import get_type
from .exposition import Registry, Scrape

_NODES = get_type("", "nodes")
ROOT_FREE = 0.62
BOOT_SIZE = 512 * 2**20
BOOT_FREE = 0.7


def collect(scrape: Scrape, reg: Registry) -> None:
    nodes = scrape.store.list(_NODES)
    if not nodes:
        return
    capacity = (nodes[0].get("status") or {}).get("capacity") or {}
    root_size = parse_quantity(capacity.get("ephemeral-storage")) or 100.0 * 2**30
    avail = reg.gauge("node_filesystem_avail_bytes",
                      "Filesystem space available to non-root users in bytes.")
    free = reg.gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.")
    size = reg.gauge("node_filesystem_size_bytes", "Filesystem size in bytes.")
    readonly = reg.gauge("node_filesystem_readonly", "Filesystem read-only status.")
    for device, fstype, mountpoint, total, free_part in (
            ("/dev/sda1", "ext4", "/", root_size, ROOT_FREE),
            ("/dev/sda15", "vfat", "/boot/efi", BOOT_SIZE, BOOT_FREE)):
        labels = {"device": device, "fstype": fstype, "mountpoint": mountpoint}
        # ext4 keeps 5% for root: what non-root users may use is less than what is free.
        avail.add(labels, int(total * (free_part - 0.05)))
        free.add(labels, int(total * free_part))
        size.add(labels, int(total))
        readonly.add(labels, 0)
