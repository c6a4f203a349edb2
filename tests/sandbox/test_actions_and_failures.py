# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index,arg-type,operator,assignment,type-var"
"""Action-log exactness and injected API failures."""

from __future__ import annotations

import time

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sandbox import SandboxCluster

from .conftest import Kubectl, wait_until


def test_reads_are_not_logged(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                              kubectl: Kubectl) -> None:
    apps_v1.list_namespaced_deployment("shop")
    kubectl("get", "pods", "-A")
    assert cluster.actions() == []


def test_classification(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                        core_v1: client.CoreV1Api) -> None:
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 4}})
    apps_v1.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"a": "b"}}})
    pod = core_v1.list_namespaced_pod("shop", label_selector="app=checkout").items[0]
    core_v1.delete_namespaced_pod(pod.metadata.name, "shop")
    entries = cluster.actions(include_failed=True)
    assert [(e["kind"], e["name"], e["method"]) for e in entries] == [
        ("scale", "web", "PATCH"), ("other", "web", "PATCH"),
        ("other", pod.metadata.name, "DELETE")]
    first = entries[0]
    assert first["namespace"] == "shop" and first["resource"] == "deployments"
    assert first["subresource"] is None and first["ok"] and first["status"] == 200
    assert first["time"] and first["path"] == "/apis/apps/v1/namespaces/shop/deployments/web"
    served = httpx.get(f"{cluster.url}/sandbox/v1/actions", params={"kind": "scale"}).json()
    assert [a["seq"] for a in served["actions"]] == [first["seq"]]


def test_injected_500s_then_success(cluster: SandboxCluster, apps_v1: client.AppsV1Api) -> None:
    cluster.fail_requests(status=500, count=2, path_contains="/deployments/web")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 5}})
        assert err.value.status == 500
    apps_v1.read_namespaced_deployment("checkout", "shop")  # other paths unaffected
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 5}})
    assert [a["kind"] for a in cluster.actions()] == ["scale"]
    failed = [a for a in cluster.actions(include_failed=True) if not a["ok"]]
    assert [(a["status"], a["name"]) for a in failed] == [(500, "web"), (500, "web")]
    wait_until(lambda: cluster.is_healthy("shop", "web"))


def test_injected_conflict_and_throttle_over_http(cluster: SandboxCluster,
                                                  apps_v1: client.AppsV1Api) -> None:
    resp = httpx.post(f"{cluster.url}/sandbox/v1/api-failures",
                      json={"status": 409, "count": 1, "path_contains": "/deployments/web"})
    assert resp.status_code == 201
    cluster.fail_requests(status=429, count=1, path_contains="/deployments/web")
    with pytest.raises(ApiException) as conflict:
        apps_v1.read_namespaced_deployment("web", "shop")
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as throttled:
        apps_v1.read_namespaced_deployment("web", "shop")
    assert throttled.value.status == 429
    assert apps_v1.read_namespaced_deployment("web", "shop").metadata.name == "web"


def test_injected_delay_times_out_client(cluster: SandboxCluster) -> None:
    cluster.fail_requests(status=None, count=1, path_contains="/namespaces/shop/pods",
                          delay_seconds=1.0)
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{cluster.url}/api/v1/namespaces/shop/pods", timeout=0.3)
    start = time.monotonic()
    assert httpx.get(f"{cluster.url}/api/v1/namespaces/shop/pods").status_code == 200
    assert time.monotonic() - start < 0.9
    with pytest.raises(ValueError):
        cluster.fail_requests(status=418)


def test_reset_restores_demo(cluster: SandboxCluster, apps_v1: client.AppsV1Api) -> None:
    apps_v1.delete_namespaced_deployment("checkout", "shop")
    cluster.inject("unfixable", namespace="shop", deployment="web")
    cluster.fail_requests(status=500, count=5, path_contains="/nothing")
    assert httpx.post(f"{cluster.url}/sandbox/v1/reset").status_code == 200
    assert {d.metadata.name for d in apps_v1.list_namespaced_deployment("shop").items} == {
        "web", "checkout", "email-worker", "web-api"}
    assert cluster.actions(include_failed=True) == [] and cluster.faults()["active"] == []
    assert httpx.get(f"{cluster.url}/sandbox/v1/api-failures").json()["rules"] == []
    assert cluster.is_healthy("shop", "web") and cluster.is_healthy("shop", "checkout")
