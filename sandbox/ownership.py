"""Who controls what: the ownerReference checks every controller makes, and pod IPs.

Placement on nodes is scheduling.py's."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from .resources import get_type
from .store import Obj, Store

NODES = get_type("", "nodes")
PODS = get_type("", "pods")


def controlled_by(obj: Obj, owner: Obj) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def pods_of(store: Store, owner: Obj) -> list[Obj]:
    return [p for p in store.list(PODS, owner["metadata"]["namespace"]) if controlled_by(p, owner)]


def ip_allocator() -> Callable[[], str]:
    """Pod IPs from the cluster CIDR, never reused within one sandbox run."""
    numbers = count(10)

    def next_ip() -> str:
        ip = next(numbers)
        return f"10.244.{(ip // 250) % 250}.{ip % 250 + 2}"

    return next_ip
