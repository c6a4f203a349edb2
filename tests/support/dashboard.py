"""What the Grafana dashboard in deploy/grafana/ queries, for the tests that hold it to the exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "zerotouch.json"
_METRIC = re.compile(r"\b((?:zerotouch|temporal)_[a-z_]+)\b")
_SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def series_names() -> set[str]:
    """Every series name the panels query, as Prometheus sees it (with _total, _bucket ...)."""
    return {name for expr in expressions() for name in _METRIC.findall(expr)}


def family_of(series: str) -> str:
    """The instrument name behind a series: zerotouch_actions_total → zerotouch_actions."""
    for suffix in _SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series
