"""Debian's Alertmanager as an asyncio child process, configured per test, fed through its v2 API."""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from embedded.monitoring import alertmanager_config, binary
from tests.support.processes import ChildProcess, wait_http
from zerotouch.ports import free_port


class Alertmanager:
    """One Alertmanager whose only receiver is the relay's webhook (``send_resolved``)."""

    def __init__(self, process: ChildProcess, url: str) -> None:
        self.process = process
        self.url = url

    @classmethod
    async def start(cls, workdir: Path, *, relay_url: str, token_file: Path, group_by: list[str],
                    group_wait: str = "0s", group_interval: str = "1s", port: int | None = None) -> Alertmanager:
        port = port or free_port()
        config = alertmanager_config(relay_url, token_file, group_by=group_by, group_wait=group_wait,
                                     group_interval=group_interval)
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        (workdir / "am-data").mkdir(exist_ok=True)
        process = await ChildProcess.start([
            binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # The externalURL its webhooks carry, where incidents confirm resolution: not the hostname's.
            f"--web.external-url=http://127.0.0.1:{port}",
            # No cluster: a single peer would still wait for gossip to settle before notifying.
            "--cluster.listen-address=",
        ], log=workdir / "alertmanager.log", name="alertmanager")
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_http(f"{url}/-/ready", process)
        except BaseException:
            await process.stop()
            raise
        return cls(process, url)

    async def stop(self) -> None:
        await self.process.stop()

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """Hand alerts to Alertmanager as Prometheus would (POST /api/v2/alerts)."""
        async with httpx.AsyncClient(timeout=30.0) as http:
            answer = await http.post(f"{self.url}/api/v2/alerts", json=alerts)
        answer.raise_for_status()

    async def webhook_counters(self) -> WebhookCounters:
        async with httpx.AsyncClient(timeout=10.0) as http:
            text = (await http.get(f"{self.url}/metrics")).text
        return WebhookCounters.parse(text)


class WebhookCounters:
    """Alertmanager's own count of what it did for the webhook integration.

    ``requests``: HTTP attempts (every retry counts); ``requests_failed``: attempts that got a
    5xx or no answer; ``notifications``: flushes of a group (each retries within its context);
    ``notifications_failed``: flushes that gave up, to be resent at the next group_interval.
    """

    _SAMPLE = re.compile(r'^(alertmanager_notification\w*_total)\{([^}]*)\}\s+(\S+)$', re.MULTILINE)

    def __init__(self, values: dict[str, float]) -> None:
        self.requests = int(values.get("alertmanager_notification_requests_total", 0))
        self.requests_failed = int(values.get("alertmanager_notification_requests_failed_total", 0))
        self.notifications = int(values.get("alertmanager_notifications_total", 0))
        self.notifications_failed = int(values.get("alertmanager_notifications_failed_total", 0))

    @classmethod
    def parse(cls, text: str) -> WebhookCounters:
        values: dict[str, float] = {}
        for name, labels, value in cls._SAMPLE.findall(text):
            if 'integration="webhook"' in labels:
                values[name] = values.get(name, 0.0) + float(value)
        return cls(values)

    def __sub__(self, other: WebhookCounters) -> WebhookCounters:
        result = WebhookCounters({})
        for field in ("requests", "requests_failed", "notifications", "notifications_failed"):
            setattr(result, field, getattr(self, field) - getattr(other, field))
        return result

    def __repr__(self) -> str:
        return (f"WebhookCounters(requests={self.requests}, requests_failed={self.requests_failed}, "
                f"notifications={self.notifications}, notifications_failed={self.notifications_failed})")


def am_alert(alertname: str, *, namespace: str, deployment: str, lasts: float | None = None,
             **labels: str) -> dict[str, Any]:
    """An alert for the v2 API; ``lasts`` seconds until it resolves (None: Alertmanager's resolve_timeout)."""
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": alertname, "namespace": namespace, "deployment": deployment, **labels},
        "annotations": {"summary": f"{alertname} on {namespace}/{deployment}"},
        "startsAt": now.isoformat(),
        "generatorURL": "http://prometheus.invalid/graph",
    }
    if lasts is not None:
        alert["endsAt"] = (now + timedelta(seconds=lasts)).isoformat()
    return alert


# kube-prometheus' KubeDeploymentReplicasMismatch (kubernetes-mixin), as its Prometheus sends it.
_REPLICAS_MISMATCH = (
    '(kube_deployment_spec_replicas{job="kube-state-metrics"} > '
    'kube_deployment_status_replicas_available{job="kube-state-metrics"}) and '
    '(changes(kube_deployment_status_replicas_updated{job="kube-state-metrics"}[10m]) == 0)'
)


def kube_alert(namespace: str, deployment: str, *, cluster: str = "prod-eu-west-1") -> dict[str, Any]:
    """A kube-prometheus alert at its real size: the labels kube-state-metrics and the Prometheus
    operator put on it, the mixin's three annotations and a generator URL (~1.3 KB in a webhook)."""
    return {
        "labels": {
            "alertname": "KubeDeploymentReplicasMismatch", "cluster": cluster, "container": "kube-state-metrics",
            "deployment": deployment, "endpoint": "http", "instance": "10.244.3.17:8080",
            "job": "kube-state-metrics", "namespace": namespace, "pod": "kube-state-metrics-6f8b9c7d5-x2x7q",
            "prometheus": "monitoring/k8s", "service": "kube-state-metrics", "severity": "warning",
        },
        "annotations": {
            "description": f"Deployment {namespace}/{deployment} has not matched the expected number of replicas "
                           "for longer than 15 minutes. This indicates that cluster infrastructure is unable to "
                           "start or restart the necessary components.",
            "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubedeploymentreplicasmismatch",
            "summary": "Deployment has not matched the expected number of replicas.",
        },
        "startsAt": datetime.now(UTC).isoformat(),
        "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr="
                        + urllib.parse.quote_plus(_REPLICAS_MISMATCH) + "&g0.tab=1",
    }
