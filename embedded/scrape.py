"""Scrape jobs shaped like kube-prometheus's ServiceMonitors, for the sandbox's per-exporter endpoints.

The stock rules select on the labels those ServiceMonitors produce (`job="kube-state-metrics"`,
`job="kubelet", metrics_path="/metrics/cadvisor"`, ...), and the alerts they fire carry them
(`service`, `endpoint`, `namespace`, `instance`). Static targets with the same labels make the
sandbox's alerts look like a real cluster's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class ScrapeJob:
    """One Prometheus scrape config with static targets."""

    job_name: str
    targets: list[str]
    metrics_path: str = "/metrics"
    labels: dict[str, str] = field(default_factory=dict)
    honor_labels: bool = False
    drop_metrics: str | None = None  # a regex of metric names not to ingest

    def config(self) -> dict[str, Any]:
        static: dict[str, Any] = {"targets": list(self.targets)}
        if self.labels:
            static["labels"] = dict(self.labels)
        config: dict[str, Any] = {"job_name": self.job_name, "metrics_path": self.metrics_path,
                                  "honor_labels": self.honor_labels, "static_configs": [static]}
        if self.drop_metrics:
            config["metric_relabel_configs"] = [
                {"source_labels": ["__name__"], "regex": self.drop_metrics, "action": "drop"},
            ]
        return config


@dataclass(frozen=True)
class Exporter:
    """What kube-prometheus's ServiceMonitor for one exporter puts on its targets."""

    path: str  # where the sandbox serves this exporter's series
    job: str
    service: str
    endpoint: str
    namespace: str
    honor_labels: bool
    metric_prefixes: str  # the series this exporter owns, as a regex
    upstream_path: str | None = None  # the real exporter's path, kept as the `metrics_path` label


# The kubelet's ServiceMonitor keeps honorLabels (its series carry the pods' namespace) and
# copies __metrics_path__ into `metrics_path`; kube-state-metrics' keeps honorLabels too.
# node-exporter's does not need it upstream; here it keeps `instance` when the sandbox sets it
# to a node name, as upstream's relabelling does.
EXPORTERS: dict[str, Exporter] = {
    "kube-state-metrics": Exporter("/metrics/kube-state-metrics", "kube-state-metrics", "kube-state-metrics",
                                   "https-main", "monitoring", True, "kube_.*"),
    "kubelet": Exporter("/metrics/kubelet", "kubelet", "kubelet", "https-metrics", "kube-system", True,
                        "kubelet_.*", upstream_path="/metrics"),
    "cadvisor": Exporter("/metrics/cadvisor", "kubelet", "kubelet", "https-metrics", "kube-system", True,
                         "container_.*|machine_.*", upstream_path="/metrics/cadvisor"),
    "node-exporter": Exporter("/metrics/node-exporter", "node-exporter", "node-exporter", "https", "monitoring",
                              True, "node_.*"),
}


# The sandbox is API server, scheduler and controller manager in one process, with no metrics of
# their own. Without an `up` series for their jobs the stock KubeAPIDown, KubeSchedulerDown and
# KubeControllerManagerDown (`absent(up{job=...})`) would fire at once on every sandbox.
CONTROL_PLANE: dict[str, dict[str, str]] = {
    "apiserver": {"service": "kubernetes", "endpoint": "https", "namespace": "default"},
    "kube-scheduler": {"service": "kube-scheduler", "endpoint": "https-metrics", "namespace": "kube-system"},
    "kube-controller-manager": {"service": "kube-controller-manager", "endpoint": "https-metrics",
                                "namespace": "kube-system"},
}


def control_plane_jobs(target: str) -> list[ScrapeJob]:
    """An `up` series for each control-plane job: the sandbox's /metrics with every series dropped."""
    return [ScrapeJob(job, [target], "/metrics", {"job": job, **labels}, drop_metrics=".+")
            for job, labels in CONTROL_PLANE.items()]


def exporter_jobs(target: str, exporters: Iterable[str] = EXPORTERS) -> list[ScrapeJob]:
    """One job per exporter the sandbox at ``target`` (host:port) serves, labelled as kube-prometheus does."""
    jobs = []
    for name in exporters:
        exporter = EXPORTERS[name]
        labels = {"job": exporter.job, "service": exporter.service, "endpoint": exporter.endpoint,
                  "namespace": exporter.namespace}
        if exporter.upstream_path:
            labels["metrics_path"] = exporter.upstream_path
        # Prometheus needs unique job names; the `job` label above is what rules and alerts see.
        jobs.append(ScrapeJob(name, [target], exporter.path, labels, exporter.honor_labels))
    return jobs


def sandbox_jobs(target: str, exporters: Iterable[str] = EXPORTERS) -> list[ScrapeJob]:
    """The exporter jobs, and `sandbox` for everything else on /metrics (application series): the
    exporters' series are dropped there so that no series is ingested twice under two jobs."""
    served = list(exporters)
    owned = "|".join(EXPORTERS[name].metric_prefixes for name in served)
    rest = ScrapeJob("sandbox", [target], "/metrics", honor_labels=True, drop_metrics=owned or None)
    return [*exporter_jobs(target, served), *control_plane_jobs(target), rest]


def served_exporters(base_url: str) -> list[str]:
    """The exporters whose endpoint the sandbox at ``base_url`` answers (a sandbox from before
    the per-exporter endpoints serves only /metrics)."""
    served = []
    with httpx.Client(timeout=5.0) as http:
        for name, exporter in EXPORTERS.items():
            try:
                if http.get(f"{base_url}{exporter.path}").status_code == 200:
                    served.append(name)
            except httpx.HTTPError:
                continue
    return served
