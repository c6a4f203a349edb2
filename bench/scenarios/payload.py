"""Scenario 7: one Alertmanager group of 1,000 and of 5,000 kube-prometheus alerts in one webhook.

What the relay costs for a storm's group: the body (sized as kube-prometheus alerts really are),
parsing it, and handing every alert to its incident; the load generator plays Alertmanager,
posting the same group again after a 503 (with its back-off) until the relay answers 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import tracemalloc
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.procs import cpu_seconds, rss_mib
from bench.report import Goal, Section
from bench.stack import Stack, zerotouch_stack
from bench.stats import median
from starters.relay.config import DEFAULT_MAX_BODY_BYTES, DEFAULT_TEMPORAL_TIMEOUT_SECONDS
from zerotouch.alerts import WebhookPayload
from zerotouch.names import INCIDENT_WORKFLOW

# kube-prometheus' KubeDeploymentReplicasMismatch (kubernetes-mixin), as its Prometheus sends it.
_EXPR = ('(kube_deployment_spec_replicas{job="kube-state-metrics"} > '
         'kube_deployment_status_replicas_available{job="kube-state-metrics"}) and '
         '(changes(kube_deployment_status_replicas_updated{job="kube-state-metrics"}[10m]) == 0)')
# Alertmanager's retry of a failed webhook (notify.go: exponential back-off from 0.5 s, x 1.5).
_BACKOFF_SECONDS, _BACKOFF_FACTOR, _BACKOFF_MAX = 0.5, 1.5, 5.0
_GIVE_UP_SECONDS = 600.0


def kube_alert(namespace: str, index: int, starts_at: str) -> dict[str, Any]:
    """One alert of a webhook as Alertmanager sends it for kube-prometheus (~1.3 KB)."""
    deployment = f"deploy-{index:05d}"
    return {
        "status": "firing",
        "labels": {
            "alertname": "KubeDeploymentReplicasMismatch", "cluster": "prod-eu-west-1",
            "container": "kube-state-metrics", "deployment": deployment, "endpoint": "http",
            "instance": "10.244.3.17:8080", "job": "kube-state-metrics", "namespace": namespace,
            "pod": "kube-state-metrics-6f8b9c7d5-x2x7q", "prometheus": "monitoring/k8s",
            "service": "kube-state-metrics", "severity": "warning",
        },
        "annotations": {
            "description": f"Deployment {namespace}/{deployment} has not matched the expected number of replicas "
                           "for longer than 15 minutes. This indicates that cluster infrastructure is unable to "
                           "start or restart the necessary components.",
            "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubedeploymentreplicasmismatch",
            "summary": "Deployment has not matched the expected number of replicas.",
        },
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=" + urllib.parse.quote_plus(_EXPR) + "&g0.tab=1",
        "fingerprint": hashlib.sha256(f"{namespace}/{deployment}".encode()).hexdigest()[:16],
    }


def group_webhook(namespace: str, count: int) -> bytes:
    """The webhook of one group (``group_by: [namespace]``, kube-prometheus' default) of ``count`` alerts."""
    starts_at = datetime.now(UTC).isoformat()
    return json.dumps({
        "version": "4", "groupKey": f'{{}}:{{namespace="{namespace}"}}', "truncatedAlerts": 0, "status": "firing",
        "receiver": "zerotouch", "groupLabels": {"namespace": namespace},
        "commonLabels": {"alertname": "KubeDeploymentReplicasMismatch", "namespace": namespace},
        "commonAnnotations": {}, "externalURL": "http://alertmanager-main:9093",
        "alerts": [kube_alert(namespace, index, starts_at) for index in range(count)],
    }).encode()


def parse_cost(body: bytes, rounds: int = 3) -> tuple[float, float]:
    """Median seconds to validate ``body`` as the relay does, and the bytes the parsed payload holds (MiB)."""
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        WebhookPayload.model_validate_json(body)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        kept = WebhookPayload.model_validate_json(body)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return median(seconds), held / 2**20


def peak_rss_mib(pid: int) -> float:
    """The kernel's high-water mark of the process's resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


async def _deliver(stack: Stack, body: bytes) -> tuple[float, list[int]]:
    """Post ``body`` as Alertmanager would until a 200: seconds from the first post, and every status."""
    statuses: list[int] = []
    wait = _BACKOFF_SECONDS
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60.0, headers=stack.headers) as http:
        while True:
            response = await http.post(f"{stack.relay_url}/alertmanager", content=body)
            statuses.append(response.status_code)
            if response.status_code == 200:
                return time.perf_counter() - started, statuses
            if response.status_code != 503 or time.perf_counter() - started > _GIVE_UP_SECONDS:
                raise RuntimeError(f"relay answered {response.status_code}: {response.text[:300]}")
            await asyncio.sleep(wait)
            wait = min(wait * _BACKOFF_FACTOR, _BACKOFF_MAX)


async def _incidents(stack: Stack, at_least: int, timeout: float = 60.0) -> int:
    """Incident workflows Temporal counts, once visibility shows ``at_least`` (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        count = (await stack.client.count_workflows(f"WorkflowType = '{INCIDENT_WORKFLOW}'")).count
        if count >= at_least or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.5)


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    sizes = (100, 500) if quick else (1000, 5000)
    rows: list[list[str]] = [["alerts in the group", "body", "parse (validate) in-process", "parsed payload holds",
                              "first post → 200", "posts (503s)", "alerts/s", "relay CPU", "temporal CPU",
                              "relay RSS before → peak"]]
    data: dict[str, Any] = {}
    goals: list[Goal] = []
    # No worker: this measures taking the group in, not working on it (scenario 3 does both).
    async with zerotouch_stack(workdir, policy_path=policy_path, worker=False) as stack:
        assert stack.relay is not None
        total = 0
        for size in sizes:
            namespace = f"storm-{size}"
            body = group_webhook(namespace, size)
            parse_seconds, held_mib = parse_cost(body)
            before_rss = rss_mib(stack.relay.pid)
            before_cpu = {"relay": cpu_seconds(stack.relay.pid), "temporal": cpu_seconds(stack.temporal.pid)}
            seconds, statuses = await _deliver(stack, body)
            cpu = {name: cpu_seconds(pid) - before_cpu[name]
                   for name, pid in (("relay", stack.relay.pid), ("temporal", stack.temporal.pid))}
            peak = peak_rss_mib(stack.relay.pid)
            incidents = await _incidents(stack, total + size) - total
            total += incidents
            rows.append([f"{size:,}", f"{len(body) / 2**20:.2f} MiB ({len(body) / size:.0f} B/alert)",
                         f"{parse_seconds * 1000:.0f} ms", f"{held_mib:.1f} MiB", f"{seconds:.1f} s",
                         f"{len(statuses)} ({statuses.count(503)})", f"{size / seconds:.0f}",
                         f"{cpu['relay']:.1f} s", f"{cpu['temporal']:.1f} s", f"{before_rss:.0f} → {peak:.0f} MiB"])
            data[str(size)] = {"body_bytes": len(body), "parse_seconds": parse_seconds, "parsed_mib": held_mib,
                               "delivery_seconds": seconds, "statuses": statuses, "cpu_seconds": cpu,
                               "rss_before_mib": before_rss, "rss_peak_mib": peak, "incidents": incidents}
            goals.append(Goal(f"{size:,} alerts in one webhook: {size:,} incidents", incidents == size,
                              f"{incidents} incidents, {seconds:.1f} s, relay peak {peak:.0f} MiB"))
    return Section(
        title="7. One large group in one webhook",
        how=(f"One Alertmanager webhook carrying a whole aggregation group (`group_by: [namespace]`, kube-prometheus' "
             f"routing) of {' and then '.join(f'{size:,}' for size in sizes)} firing "
             "`KubeDeploymentReplicasMismatch` alerts with kube-prometheus' labels, annotations and generator URL, "
             "each its own incident. The load generator plays Alertmanager: it posts the group, and after a 503 "
             "posts it again with Alertmanager's back-off (0.5 s, x 1.5) until the relay answers 200. The relay "
             f"(`zerotouch relay`, default body limit {DEFAULT_MAX_BODY_BYTES // 2**20} MiB, Temporal timeout "
             f"{DEFAULT_TEMPORAL_TIMEOUT_SECONDS:g} s) answers 503 when Temporal has not taken every alert within its "
             "timeout and continues with the rest on the next post. No worker runs. Relay RSS: before the group, "
             "and the process's high-water mark (VmHWM) after it; CPU seconds from the first post to the 200. "
             "Parse time and held memory: `WebhookPayload.model_validate_json` of the same body in the load "
             "generator's process (tracemalloc)."),
        table=rows,
        goals=goals,
        notes=["Temporal's dev server (SQLite) takes the signal-with-starts at the rate in the alerts/s column; "
               "its CPU, not the relay's, bounds a group's delivery on this machine. Production Temporal takes a "
               "group faster; Alertmanager's notify deadline is its group_interval (kube-prometheus: 5 min), at "
               "least 10 s."],
        data=data,
    )
