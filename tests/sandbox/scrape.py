"""Reading a sandbox scrape page the way Prometheus would: samples by name and label subset."""

from __future__ import annotations

import re

import httpx

from sandbox import SandboxCluster

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2)))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append((have, float(m.group(3))))
    return found


def page(cluster: SandboxCluster, path: str = "/metrics") -> str:
    resp = httpx.get(f"{cluster.url}{path}", timeout=10)
    resp.raise_for_status()
    return resp.text


def values(cluster: SandboxCluster, name: str, path: str = "/metrics/kube-state-metrics",
           **labels: str) -> list[float]:
    return [v for _, v in samples(page(cluster, path), name, **labels)]
