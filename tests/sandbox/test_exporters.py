# The typed Kubernetes client wants model objects; a dict body is what it sends anyway.
# mypy: disable-error-code="arg-type"
"""One scrape page per exporter, each with the real exporter's series names and label sets."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest
from kubernetes import client

from sandbox import SandboxCluster

from .conftest import wait_until
from .scrape import page, samples

PROMTOOL = "/usr/bin/promtool"
PAGES = ("/metrics/kube-state-metrics", "/metrics/kubelet", "/metrics/cadvisor",
         "/metrics/node-exporter")
# series -> labels every sample must carry (the exporter's own label set)
KSM = {
    "kube_pod_owner": {"namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller"},
    "kube_pod_status_phase": {"namespace", "pod", "uid", "phase"},
    "kube_pod_container_resource_requests": {"namespace", "pod", "uid", "container", "node",
                                             "resource", "unit"},
    "kube_pod_container_resource_limits": {"namespace", "pod", "uid", "container", "node",
                                           "resource", "unit"},
    "kube_pod_container_status_restarts_total": {"namespace", "pod", "uid", "container"},
    "kube_replicaset_owner": {"namespace", "replicaset", "owner_kind", "owner_name",
                              "owner_is_controller"},
    "kube_deployment_status_condition": {"namespace", "deployment", "condition", "status"},
    "kube_deployment_spec_replicas": {"namespace", "deployment"},
    "kube_statefulset_replicas": {"namespace", "statefulset"},
    "kube_statefulset_status_replicas_ready": {"namespace", "statefulset"},
    "kube_statefulset_status_replicas_current": {"namespace", "statefulset"},
    "kube_statefulset_status_replicas_updated": {"namespace", "statefulset"},
    "kube_statefulset_status_current_revision": {"namespace", "statefulset", "revision"},
    "kube_statefulset_status_update_revision": {"namespace", "statefulset", "revision"},
    "kube_statefulset_status_observed_generation": {"namespace", "statefulset"},
    "kube_statefulset_metadata_generation": {"namespace", "statefulset"},
    "kube_daemonset_status_desired_number_scheduled": {"namespace", "daemonset"},
    "kube_daemonset_status_number_misscheduled": {"namespace", "daemonset"},
    "kube_daemonset_status_updated_number_scheduled": {"namespace", "daemonset"},
    "kube_daemonset_metadata_generation": {"namespace", "daemonset"},
    "kube_node_status_condition": {"node", "condition", "status"},
    "kube_node_spec_unschedulable": {"node"},
    "kube_node_status_allocatable": {"node", "resource", "unit"},
    "kube_node_info": {"node", "kernel_version", "os_image", "container_runtime_version",
                       "kubelet_version", "kubeproxy_version", "provider_id", "pod_cidr",
                       "system_uuid", "internal_ip"},
    "kube_persistentvolumeclaim_access_mode": {"namespace", "persistentvolumeclaim",
                                               "access_mode"},
    "kube_persistentvolumeclaim_labels": {"namespace", "persistentvolumeclaim"},
    "kube_job_owner": {"namespace", "job_name", "owner_kind", "owner_name", "owner_is_controller"},
    "kube_job_spec_completions": {"namespace", "job_name"},
}


def _labels_of(text: str, name: str) -> list[set[str]]:
    return [set(labels) for labels, _ in samples(text, name)]


def test_kube_state_metrics_page(cluster: SandboxCluster, batch_v1: client.BatchV1Api) -> None:
    batch_v1.create_namespaced_job("default", {"metadata": {"name": "once"}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "busybox"}]}}}})

    def with_job_pod() -> str:
        text = page(cluster, "/metrics/kube-state-metrics")
        return text if samples(text, "kube_pod_owner", owner_kind="Job") else ""

    text: str = wait_until(with_job_pod)
    for name, expected in KSM.items():
        found = _labels_of(text, name)
        assert found, f"no samples for {name}"
        assert all(labels == expected for labels in found), (name, found[0])
    names = {line.split("{", 1)[0] for line in text.splitlines() if not line.startswith("#")}
    assert names and all(n.startswith("kube_") for n in names), names - {"kube_"}
    one = samples(text, "kube_statefulset_status_replicas_ready", namespace="shop",
                  statefulset="db")
    assert [v for _, v in one] == [2]
    assert samples(text, "kube_daemonset_status_number_ready", daemonset="node-agent")[0][1] == 3
    bare = samples(text, "kube_pod_owner", namespace="shop", pod="debug")
    assert [(labels["owner_kind"], v) for labels, v in bare] == [("<none>", 1)]
    owners = {labels["owner_kind"] for labels, _ in samples(text, "kube_pod_owner")}
    assert {"ReplicaSet", "StatefulSet", "DaemonSet", "<none>"} <= owners
    web_api = samples(text, "kube_replicaset_owner", owner_name="web-api")
    assert len(web_api) == 1 and web_api[0][0]["owner_kind"] == "Deployment"
    phases = samples(text, "kube_pod_status_phase", namespace="shop", pod="db-0")
    assert {labels["phase"]: v for labels, v in phases} == {
        "Pending": 0, "Running": 1, "Succeeded": 0, "Failed": 0, "Unknown": 0}
    progressing = samples(text, "kube_deployment_status_condition", deployment="web",
                          condition="Progressing")
    assert {labels["status"]: v for labels, v in progressing} == {
        "true": 1, "false": 0, "unknown": 0}
    cpu = samples(text, "kube_pod_container_resource_requests", pod="db-0", resource="cpu")
    assert cpu[0][0]["unit"] == "core" and cpu[0][1] == 0.25


def test_kubelet_cadvisor_and_node_exporter_pages(cluster: SandboxCluster) -> None:
    kubelet = page(cluster, "/metrics/kubelet")
    for name in ("kubelet_volume_stats_capacity_bytes", "kubelet_volume_stats_available_bytes",
                 "kubelet_volume_stats_used_bytes", "kubelet_volume_stats_inodes",
                 "kubelet_volume_stats_inodes_free", "kubelet_volume_stats_inodes_used"):
        found = samples(kubelet, name)
        assert {labels["persistentvolumeclaim"] for labels, _ in found} == {"data-db-0",
                                                                           "data-db-1"}
        assert all(set(labels) == {"namespace", "persistentvolumeclaim"} for labels, _ in found)
    assert samples(kubelet, "kubelet_volume_stats_capacity_bytes")[0][1] == 2**30
    cadvisor = page(cluster, "/metrics/cadvisor")
    for name in ("container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
                 "container_memory_working_set_bytes"):
        found = samples(cadvisor, name, namespace="shop", pod="db-0", container="db")
        assert len(found) == 1 and {"id", "image", "name"} <= set(found[0][0]), name
    node = page(cluster, "/metrics/node-exporter")
    root = {name: samples(node, name, mountpoint="/") for name in (
        "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_filesystem_readonly")}
    for name, found in root.items():
        assert len(found) == 1 and set(found[0][0]) == {"device", "fstype", "mountpoint"}, name
    assert 0 < root["node_filesystem_avail_bytes"][0][1] < root["node_filesystem_size_bytes"][0][1]
    assert "node=" not in node  # node-exporter describes its own machine only


def test_everything_stays_on_metrics(cluster: SandboxCluster) -> None:
    everything = page(cluster)
    for path in PAGES:
        for line in page(cluster, path).splitlines():
            if line.startswith("# TYPE"):
                assert line in everything, line
    assert samples(everything, "http_requests_total") or samples(everything, "kafka_consumergroup_lag")


@pytest.mark.parametrize("path", PAGES)
def test_promtool_accepts_each_page(cluster: SandboxCluster, path: str) -> None:
    if not os.path.exists(PROMTOOL):
        pytest.fail("promtool is not installed; .ci/run installs it (apt-get install prometheus)")
    resp = httpx.get(f"{cluster.url}{path}", timeout=10)
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=resp.text, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
