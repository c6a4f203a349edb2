"""Kubernetes resource quantities for memory (``256Mi``, ``1Gi``, ``512M``)."""

from __future__ import annotations

import re

_SUFFIX = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def parse_memory(text: str) -> int:
    """Bytes in a memory quantity; ValueError for anything else."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"bad memory quantity {text!r}; use e.g. 256Mi or 1Gi")
    return int(float(match.group(1)) * _SUFFIX[match.group(2) or ""])


def format_memory(value: int) -> str:
    """The Mi/Gi spelling Kubernetes users read, exact when possible."""
    for suffix in ("Gi", "Mi", "Ki"):
        if value % _SUFFIX[suffix] == 0:
            return f"{value // _SUFFIX[suffix]}{suffix}"
    return f"{-(-value // _SUFFIX['Mi'])}Mi"
