"""Parsing Kubernetes resource quantities ("256Mi", "1G", "500m")."""

from __future__ import annotations

import re

_SUFFIX = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "m": 10**-3, "": 1,
}
_RE = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([KMGTPE]i|[kKMGTPEm]?)\s*$")


def parse_quantity(value: object) -> float | None:
    """Quantity -> number in base units; None when absent or unparseable
    (a fault condition must not crash the controller on odd input)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _RE.match(str(value))
    if not m:
        return None
    return float(m.group(1)) * _SUFFIX[m.group(2)]
