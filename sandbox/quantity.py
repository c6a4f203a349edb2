"""Parsing Kubernetes resource quantities ("256Mi", "1G", "500m", "1e3").

The grammar is zerotouch's (`zerotouch.quantities`), so the sandbox accepts exactly the
quantities zerotouch does; this module only adapts it to the controller's needs.
"""

from __future__ import annotations

from zerotouch.quantities import parse_quantity as _parse


def parse_quantity(value: object) -> float | None:
    """Quantity -> number in base units; None when absent or unparseable
    (a fault condition must not crash the controller on odd input)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(_parse(str(value)))
    except ValueError:
        return None
