"""What an alert's origin says about it: always-firing heartbeats, and labels that name an exporter.

kube-prometheus ships two alerts that fire all the time by design: ``Watchdog`` (proof the
alerting pipeline works) and ``InfoInhibitor`` (a helper that silences info alerts). They are
accepted and never open an incident. Alerts computed from an exporter's series
(kube-state-metrics, the kubelet, node-exporter) carry that exporter's scrape labels
(``job``, ``service``, ``instance``, ``endpoint``): those name the exporter, not the broken
application, so the service an incident is about comes from the resolved workload instead.
"""

from __future__ import annotations

from pydantic import Field

from zerotouch.runbooks import Matcher, PolicyModel

# The scrape labels a ServiceMonitor adds: on an exporter's series they describe the exporter.
EXPORTER_LABELS = ("job", "service", "instance", "endpoint", "metrics_path")


class AlertSources(PolicyModel):
    """The policy's ``alerts:`` section."""

    heartbeats: list[Matcher] = Field(
        default_factory=lambda: [Matcher(alertname=["Watchdog", "InfoInhibitor"])],
        description="alerts that fire all the time by design: accepted (200), never an incident",
    )
    exporter_jobs: list[str] = Field(
        default_factory=lambda: ["kube-state-metrics", "kubelet", "node-exporter", "apiserver", "coredns"],
        description="scrape jobs whose series describe other objects: on their alerts, job/service/instance/"
                    "endpoint name the exporter, and the workload comes from owner resolution",
    )

    def is_heartbeat(self, labels: dict[str, str]) -> bool:
        return any(matcher.matches(labels) for matcher in self.heartbeats)

    def from_exporter(self, labels: dict[str, str]) -> bool:
        return labels.get("job", "") in self.exporter_jobs

    def application_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """The labels with an exporter's scrape labels removed (unchanged for an application's own alert)."""
        if not self.from_exporter(labels):
            return dict(labels)
        return {name: value for name, value in labels.items() if name not in EXPORTER_LABELS}
