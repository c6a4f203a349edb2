"""PodDisruptionBudgets: status and the eviction check."""

from __future__ import annotations

from typing import Any

from . import pods
from .resources import get_type
from .selectors import match_label_selector
from .store import Obj, Store

PODS = get_type("", "pods")
PDBS = get_type("policy", "poddisruptionbudgets")


def _percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value or 0)


def desired_healthy(pdb: Obj, expected: int) -> int:
    spec = pdb.get("spec") or {}
    if "minAvailable" in spec:
        return _percent(spec["minAvailable"], expected, round_up=True)
    if "maxUnavailable" in spec:
        return max(0, expected - _percent(spec["maxUnavailable"], expected, round_up=False))
    return 0


def counts(store: Store, pdb: Obj) -> tuple[int, int]:
    """(ready pods, all pods) selected by the budget."""
    selected = [p for p in store.list(PODS, pdb["metadata"]["namespace"])
                if match_label_selector(pdb["spec"].get("selector"),
                                        p["metadata"].get("labels") or {})]
    return sum(1 for p in selected if pods.is_ready(p)), len(selected)


def status(store: Store, pdb: Obj) -> dict[str, Any]:
    healthy, expected = counts(store, pdb)
    desired = desired_healthy(pdb, expected)
    return {
        "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
        "disruptionsAllowed": max(0, healthy - desired),
        "observedGeneration": pdb["metadata"].get("generation", 1),
    }


def allows_eviction(store: Store, pod: Obj) -> tuple[bool, str]:
    """Would evicting `pod` keep every covering budget at its minimum?
    Returns (allowed, name of the budget that refuses)."""
    if not pods.is_ready(pod):
        return True, ""  # evicting an unhealthy pod never reduces availability
    labels = pod["metadata"].get("labels") or {}
    for pdb in store.list(PDBS, pod["metadata"]["namespace"]):
        if not match_label_selector(pdb["spec"].get("selector"), labels):
            continue
        healthy, expected = counts(store, pdb)
        if healthy - 1 < desired_healthy(pdb, expected):
            return False, pdb["metadata"]["name"]
    return True, ""
