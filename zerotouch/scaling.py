"""Replica arithmetic: what a scale step asks for, and how far one step may go.

The one definition the Governor (`zerotouch.guardrails`), the incident workflow and the
`scale_deployment` activity all use, so the Governor never grants a count the activity
then caps differently (at 45 replicas, ``45 * 1.4`` is 62.99999999999999 in floating point:
every comparison allows for that with `EPSILON`).
"""

from __future__ import annotations

import math
from typing import Protocol

EPSILON = 1e-9


class ScaleBounds(Protocol):
    """The four limits of a scale step (`ActionBounds` and `GovernorSettings` both have them)."""

    @property
    def min_replicas(self) -> int: ...
    @property
    def max_replicas(self) -> int: ...
    @property
    def scale_up_max_factor(self) -> float: ...
    @property
    def scale_down_min_factor(self) -> float: ...


def replica_window(current: int, bounds: ScaleBounds) -> tuple[int, int]:
    """(low, high): the replica counts one step from ``current`` may reach (low > high: none).

    From zero, a step is measured from one replica.
    """
    base = max(current, 1)
    low = max(bounds.min_replicas, math.ceil(base * bounds.scale_down_min_factor - EPSILON))
    high = min(bounds.max_replicas, math.floor(base * bounds.scale_up_max_factor + EPSILON))
    return low, high


def scaled_by_factor(current: int, factor: float) -> int:
    """``current * factor``, rounded away from ``current`` (growing rounds up, shrinking down)."""
    raw = max(current, 1) * factor
    return math.ceil(raw - EPSILON) if factor >= 1 else math.floor(raw + EPSILON)


def requested_replicas(
    current: int, *, replicas: int | None = None, factor: float | None = None, delta: int | None = None
) -> int | None:
    """What a scale step asks for before any bound: the first of replicas, factor, delta given."""
    if replicas is not None:
        return replicas
    if factor is not None:
        return scaled_by_factor(current, factor)
    if delta is not None:
        return current + delta
    return None
