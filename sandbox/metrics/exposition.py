"""Prometheus text format 0.0.4: families of samples, rendered with HELP and TYPE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..faults import FaultManager
    from ..store import Store
    from .traffic import TrafficCounters

Labels = dict[str, str]


@dataclass
class Family:
    name: str
    kind: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, labels: Labels, value: float) -> None:
        self.samples.append((labels, value))


class Registry:
    """Families by name; asking twice for a name returns the same family, so exporters
    that share a series (the legacy and the kubelet volume stats) merge into one block."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def family(self, name: str, kind: str, help_text: str) -> Family:
        return self._families.setdefault(name, Family(name, kind, help_text))

    def gauge(self, name: str, help_text: str) -> Family:
        return self.family(name, "gauge", help_text)

    def counter(self, name: str, help_text: str) -> Family:
        return self.family(name, "counter", help_text)

    def render(self) -> str:
        lines: list[str] = []
        for f in self._families.values():
            lines.append(f"# HELP {f.name} {f.help}")
            lines.append(f"# TYPE {f.name} {f.kind}")
            for labels, value in f.samples:
                rendered = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
                lines.append(f"{f.name}{{{rendered}}} {_fmt(value)}")
        return "\n".join(lines) + "\n"


@dataclass
class Scrape:
    """What one scrape reads, taken under the store lock."""

    store: Store
    faults: FaultManager
    traffic: TrafficCounters


Collector = Callable[[Scrape, Registry], None]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def owner_labels(ref: dict[str, object] | None) -> Labels:
    """kube-state-metrics' owner triple; `<none>` for an object nobody owns."""
    if ref is None:
        return {"owner_kind": "<none>", "owner_name": "<none>", "owner_is_controller": "<none>"}
    return {"owner_kind": str(ref["kind"]), "owner_name": str(ref["name"]),
            "owner_is_controller": "true" if ref.get("controller") else "false"}


def bool_series(family: Family, labels: Labels, value: bool | None) -> None:
    """The true/false/unknown triple kube-state-metrics writes for a condition."""
    seen = "unknown" if value is None else ("true" if value else "false")
    for status in ("true", "false", "unknown"):
        family.add({**labels, "status": status}, 1 if status == seen else 0)
