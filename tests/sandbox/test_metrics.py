"""/metrics: kube-state-metrics names, app series, valid exposition format."""

from __future__ import annotations

import os
import subprocess

import httpx

from sandbox import SandboxCluster

PROMTOOL = "/usr/bin/promtool"

EXPECTED = [
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_waiting_reason",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_ready",
    "kube_pod_owner",
    "kube_replicaset_owner",
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
    "kube_deployment_status_replicas_unavailable",
    "kube_pod_container_resource_limits",
    "kube_deployment_status_observed_generation",
    "kube_deployment_metadata_generation",
    "http_requests_total",
    "kafka_consumergroup_lag",
    "kubelet_volume_stats_used_bytes",
    "kubelet_volume_stats_capacity_bytes",
]


def _scrape(cluster: SandboxCluster) -> httpx.Response:
    cluster.tick()  # make sure traffic counters have samples
    return httpx.get(f"{cluster.url}/metrics")


def test_expected_families_present(cluster: SandboxCluster) -> None:
    cluster.inject("crashloop", namespace="shop", deployment="web")
    cluster.tick()
    cluster.tick()
    resp = _scrape(cluster)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    for name in EXPECTED:
        assert f"# TYPE {name} " in text, name
        assert f"\n{name}{{" in text, f"no samples for {name}"
    assert 'owner_kind="ReplicaSet"' in text and 'owner_kind="Deployment"' in text
    assert 'kube_deployment_spec_replicas{namespace="shop",deployment="web"} 3' in text
    assert 'reason="CrashLoopBackOff"} 1' in text


def test_promtool_accepts_exposition(cluster: SandboxCluster) -> None:
    if not os.path.exists(PROMTOOL):
        import pytest

        pytest.fail("promtool is not installed; .ci/run installs it (apt-get install prometheus)")
    cluster.inject("oom", namespace="shop", deployment="checkout")
    cluster.tick()
    cluster.tick()
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=_scrape(cluster).text,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_request_counter_is_monotonic(cluster: SandboxCluster) -> None:
    def total() -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in _scrape(cluster).text.splitlines()
                   if line.startswith("http_requests_total{"))

    first = total()
    cluster.tick()
    assert total() >= first
