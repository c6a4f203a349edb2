# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index,arg-type,operator,assignment,type-var"
"""Each fault: inject -> unhealthy (visible in pods and metrics) -> remedy -> healthy."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from kubernetes import client

from sandbox import SandboxCluster, inject_via_http

from .conftest import wait_until


def metric(cluster: SandboxCluster, name: str, **labels: str) -> list[float]:
    """Values of the samples of `name` whose labels include `labels`."""
    text = httpx.get(f"{cluster.url}/metrics").text
    values = []
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(found.get(k) == v for k, v in labels.items()):
            values.append(float(m.group(3)))
    return values


def web_pods(core_v1: client.CoreV1Api) -> list[client.V1Pod]:
    return list(core_v1.list_namespaced_pod("shop", label_selector="app=web").items)


def test_crashloop_cleared_by_rollout_restart(cluster: SandboxCluster, core_v1: client.CoreV1Api,
                                              apps_v1: client.AppsV1Api) -> None:
    cluster.inject("crashloop", namespace="shop", deployment="web")
    assert not cluster.is_healthy("shop", "web")

    def crashing() -> bool:
        statuses = [p.status.container_statuses[0] for p in web_pods(core_v1)]
        return all(cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff"
                   and cs.restart_count >= 2 and not cs.ready
                   and cs.last_state.terminated.reason == "Error" for cs in statuses)

    wait_until(crashing)
    assert metric(cluster, "kube_pod_container_status_waiting_reason", namespace="shop",
                  reason="CrashLoopBackOff")
    assert max(metric(cluster, "kube_pod_container_status_restarts_total",
                      namespace="shop", container="web")) >= 2
    # scaling does not help: it is the template that crashes
    apps_v1.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 4}})
    wait_until(lambda: len(web_pods(core_v1)) == 4)
    assert not cluster.is_healthy("shop", "web")
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T00:00:00Z"}}}}})
    wait_until(lambda: cluster.is_healthy("shop", "web"))
    assert all(p.status.container_statuses[0].ready for p in web_pods(core_v1))
    assert not metric(cluster, "kube_pod_container_status_waiting_reason", namespace="shop")
    assert len(cluster.actions("shop", "web", kind="restart")) == 1


def test_oom_needs_double_memory(cluster: SandboxCluster, core_v1: client.CoreV1Api,
                                 apps_v1: client.AppsV1Api) -> None:
    cluster.inject("oom", namespace="shop", deployment="web")
    wait_until(lambda: all(p.status.container_statuses[0].last_state.terminated
                           and p.status.container_statuses[0].last_state.terminated.reason
                           == "OOMKilled" for p in web_pods(core_v1)))
    assert metric(cluster, "kube_pod_container_status_last_terminated_reason",
                  namespace="shop", reason="OOMKilled")
    assert metric(cluster, "kube_pod_container_resource_limits", namespace="shop",
                  container="web", resource="memory", unit="byte")[0] == 256 * 2**20

    def set_memory(value: str) -> None:
        apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"spec": {
            "containers": [{"name": "web", "resources": {"limits": {"memory": value}}}]}}}})

    set_memory("384Mi")  # 1.5x is not enough: the new pods are killed too
    wait_until(lambda: all(p.spec.containers[0].resources.limits["memory"] == "384Mi"
                           for p in web_pods(core_v1)) and len(web_pods(core_v1)) == 3)
    wait_until(lambda: all(p.status.container_statuses[0].restart_count >= 1
                           for p in web_pods(core_v1)))
    assert not cluster.is_healthy("shop", "web")
    set_memory("512Mi")
    wait_until(lambda: cluster.is_healthy("shop", "web"))
    assert [a["kind"] for a in cluster.actions("shop", "web")] == ["memory", "memory"]


def test_bad_deploy_cleared_by_rollback(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                        core_v1: client.CoreV1Api) -> None:
    cluster.inject("bad-deploy", namespace="shop", deployment="web")
    deploy = apps_v1.read_namespaced_deployment("web", "shop")
    assert deploy.spec.template.spec.containers[0].image.endswith("-bad")
    wait_until(lambda: len(web_pods(core_v1)) == 3 and all(
        p.status.phase == "Running" and p.status.container_statuses[0].ready
        and p.spec.containers[0].image.endswith("-bad") for p in web_pods(core_v1)))
    cluster.tick()  # advance the traffic counters at least once more
    errors = metric(cluster, "http_requests_total", namespace="shop", deployment="web", code="500")
    ok = metric(cluster, "http_requests_total", namespace="shop", deployment="web", code="200")
    assert errors and errors[0] > 0 and ok
    # a restart of the broken revision does not fix it
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})
    cluster.tick()
    assert not cluster.is_healthy("shop", "web")
    # roll back the way kubectl does: the template of revision 1's ReplicaSet
    replicasets = apps_v1.list_namespaced_replica_set("shop", label_selector="app=web").items
    rs = next(r for r in replicasets
              if r.metadata.annotations["deployment.kubernetes.io/revision"] == "1")
    template = api_dict(apps_v1, rs.spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    apps_v1.patch_namespaced_deployment(
        "web", "shop", [{"op": "replace", "path": "/spec/template", "value": template}])
    wait_until(lambda: cluster.is_healthy("shop", "web"))
    before = metric(cluster, "http_requests_total", namespace="shop", deployment="web", code="500")
    cluster.tick()
    assert metric(cluster, "http_requests_total", namespace="shop", deployment="web",
                  code="500") == before  # no new errors once healthy
    assert [a["kind"] for a in cluster.actions("shop", "web")] == ["restart", "rollback"]


def api_dict(apps_v1: client.AppsV1Api, model: object) -> dict[str, Any]:
    out: dict[str, Any] = apps_v1.api_client.sanitize_for_serialization(model)
    return out


def test_overload_cleared_by_scaling(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                     core_v1: client.CoreV1Api) -> None:
    cluster.inject("overload", namespace="shop", deployment="email-worker")
    lag = metric(cluster, "kafka_consumergroup_lag", namespace="shop", consumergroup="email-worker")
    assert lag == [20000]
    assert metric(cluster, "kafka_consumergroup_lag", consumergroup="web") == [100]
    wait_until(lambda: all(not p.status.container_statuses[0].ready for p in
                           core_v1.list_namespaced_pod("shop", label_selector="app=email-worker").items))
    assert not cluster.is_healthy("shop", "email-worker")
    apps_v1.patch_namespaced_deployment_scale("email-worker", "shop", {"spec": {"replicas": 2}})
    wait_until(lambda: cluster.is_healthy("shop", "email-worker"))
    assert metric(cluster, "kafka_consumergroup_lag", consumergroup="email-worker") == [100]


def test_disk_pressure_cleared_by_cleanup_job(cluster: SandboxCluster,
                                              batch_v1: client.BatchV1Api) -> None:
    cluster.inject("disk-pressure", namespace="shop", deployment="checkout")
    used = metric(cluster, "kubelet_volume_stats_used_bytes", namespace="shop",
                  persistentvolumeclaim="checkout-data")[0]
    capacity = metric(cluster, "kubelet_volume_stats_capacity_bytes", namespace="shop",
                      persistentvolumeclaim="checkout-data")[0]
    assert used / capacity > 0.85
    cluster.tick()
    assert not cluster.is_healthy("shop", "checkout")
    job = {"metadata": {"name": "cleanup", "labels": {"zerotouch.io/job": "log-cleanup"}},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "c", "image": "busybox"}]}}}}
    batch_v1.create_namespaced_job("shop", job)
    wait_until(lambda: cluster.is_healthy("shop", "checkout"))
    used = metric(cluster, "kubelet_volume_stats_used_bytes", persistentvolumeclaim="checkout-data")
    assert used[0] / capacity < 0.85


def test_unfixable_survives_restart(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                    core_v1: client.CoreV1Api) -> None:
    cluster.inject("unfixable", namespace="shop", deployment="web")
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T00:00:00Z"}}}}})
    wait_until(lambda: len(web_pods(core_v1)) == 3 and all(
        p.status.container_statuses[0].restart_count >= 1 for p in web_pods(core_v1)))
    assert not cluster.is_healthy("shop", "web")
    assert cluster.faults()["active"][0]["kind"] == "unfixable"
    assert cluster.clear(namespace="shop", deployment="web") == 1
    wait_until(lambda: cluster.is_healthy("shop", "web"))


def test_inject_validation_and_http(cluster: SandboxCluster) -> None:
    with pytest.raises(ValueError):
        cluster.inject("meltdown", namespace="shop", deployment="web")
    with pytest.raises(ValueError):
        cluster.inject("crashloop", namespace="shop", deployment="ghost")
    answer = inject_via_http(cluster.url, "crashloop", "shop", "checkout")
    assert answer["fault"]["kind"] == "crashloop"
    listed = httpx.get(f"{cluster.url}/sandbox/v1/faults").json()
    assert [(f["kind"], f["deployment"]) for f in listed["active"]] == [("crashloop", "checkout")]
    with pytest.raises(ValueError):
        inject_via_http(cluster.url, "crashloop", "shop", "ghost")
    inject_via_http(cluster.url, "clear", "shop", "checkout")
    assert cluster.faults()["active"] == []
