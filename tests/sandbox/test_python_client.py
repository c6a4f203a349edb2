# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index,arg-type,operator,assignment,type-var"
"""The official Kubernetes Python client against the sandbox, over real HTTP."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sandbox import SandboxCluster
from tests.support.kube import retry_on_conflict

from .conftest import MANUAL, wait_until

REVISION = "deployment.kubernetes.io/revision"


def _status(exc: ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(exc.body)
    return body


def test_demo_workloads_start_healthy(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                      core_v1: client.CoreV1Api) -> None:
    deployments = {d.metadata.name: d for d in apps_v1.list_namespaced_deployment("shop").items}
    assert set(deployments) == {"web", "checkout", "email-worker", "web-api"}
    web = deployments["web"]
    assert web.spec.replicas == 3
    assert web.spec.template.spec.containers[0].image == "registry.local/shop/web:1.4.2"
    assert web.spec.template.spec.containers[0].resources.limits["memory"] == "256Mi"
    assert web.metadata.annotations[REVISION] == "1"
    assert web.status.available_replicas == 3
    assert cluster.is_healthy("shop", "web")
    nodes = core_v1.list_node().items
    assert [n.metadata.name for n in nodes] == [f"sandbox-node-{i}" for i in (1, 2, 3)]
    assert nodes[0].status.allocatable["cpu"]
    assert {ns.metadata.name for ns in core_v1.list_namespace().items} >= {
        "default", "kube-system", "shop"}


def test_pods_by_label_selector(core_v1: client.CoreV1Api, apps_v1: client.AppsV1Api) -> None:
    pods = core_v1.list_namespaced_pod("shop", label_selector="app=web").items
    assert len(pods) == 3
    rs = apps_v1.list_namespaced_replica_set("shop", label_selector="app=web").items
    assert len(rs) == 1
    for pod in pods:
        assert pod.metadata.name.startswith(rs[0].metadata.name + "-")
        assert len(pod.metadata.name) == len(rs[0].metadata.name) + 6
        assert pod.metadata.labels["pod-template-hash"] == rs[0].metadata.name.split("-")[-1]
        assert pod.metadata.owner_references[0].kind == "ReplicaSet"
        cs = pod.status.container_statuses[0]
        assert cs.ready and cs.restart_count == 0 and cs.state.running
    both = core_v1.list_namespaced_pod("shop", label_selector="app in (web,checkout)").items
    assert len(both) == 5
    assert core_v1.list_namespaced_pod("shop", label_selector="app notin (web)").items
    assert not core_v1.list_namespaced_pod("shop", label_selector="app=web,tier=db").items
    one = core_v1.list_namespaced_pod("shop", field_selector=f"metadata.name={pods[0].metadata.name}")
    assert [p.metadata.name for p in one.items] == [pods[0].metadata.name]
    assert len(core_v1.list_pod_for_all_namespaces(label_selector="app=web").items) == 3


def test_patch_kinds_and_generation(apps_v1: client.AppsV1Api) -> None:
    before = apps_v1.read_namespaced_deployment("web", "shop")
    # strategic merge (the client's default for dict bodies): containers merge by name
    patched = apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "resources": {"limits": {"memory": "512Mi"}}}]}}}})
    container = patched.spec.template.spec.containers[0]
    assert container.image == "registry.local/shop/web:1.4.2"
    assert container.resources.limits["memory"] == "512Mi"
    assert patched.metadata.generation == before.metadata.generation + 1
    assert int(patched.metadata.resource_version) > int(before.metadata.resource_version)
    # JSON patch
    patched = apps_v1.patch_namespaced_deployment(
        "web", "shop", [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert patched.spec.replicas == 4
    # JSON merge patch, forced through the content type
    patched = apps_v1.patch_namespaced_deployment(
        "web", "shop", {"metadata": {"labels": {"tier": "frontend"}}},
        _content_type="application/merge-patch+json")
    assert patched.metadata.labels["tier"] == "frontend"
    assert patched.spec.replicas == 4
    # a metadata-only change does not bump the generation
    assert patched.metadata.generation == before.metadata.generation + 2


def test_scale_subresource(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                           core_v1: client.CoreV1Api) -> None:
    scale = apps_v1.read_namespaced_deployment_scale("web", "shop")
    assert scale.spec.replicas == 3 and scale.status.selector == "app=web"
    apps_v1.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 5}})
    wait_until(lambda: len(core_v1.list_namespaced_pod("shop", label_selector="app=web").items) == 5)

    def scale_to_two() -> None:
        scale = apps_v1.read_namespaced_deployment_scale("web", "shop")
        scale.spec.replicas = 2
        apps_v1.replace_namespaced_deployment_scale("web", "shop", scale)

    retry_on_conflict(scale_to_two)
    wait_until(lambda: cluster.is_healthy("shop", "web")
               and len(core_v1.list_namespaced_pod("shop", label_selector="app=web").items) == 2)
    assert [a["kind"] for a in cluster.actions("shop", "web")] == ["scale", "scale"]


def test_replicaset_revisions(cluster: SandboxCluster, apps_v1: client.AppsV1Api) -> None:
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "registry.local/shop/web:1.5.0"}]}}}})
    wait_until(lambda: cluster.is_healthy("shop", "web"))
    rs = apps_v1.list_namespaced_replica_set("shop", label_selector="app=web").items
    revisions = {r.spec.template.spec.containers[0].image: r.metadata.annotations[REVISION]
                 for r in rs}
    assert revisions == {"registry.local/shop/web:1.4.2": "1", "registry.local/shop/web:1.5.0": "2"}
    deploy = apps_v1.read_namespaced_deployment("web", "shop")
    assert deploy.metadata.annotations[REVISION] == "2"
    for r in rs:
        ref = r.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Deployment", "web",
                                                                 deploy.metadata.uid, True)
        wanted = 3 if r.metadata.annotations[REVISION] == "2" else 0
        assert r.spec.replicas == wanted
    assert deploy.status.observed_generation == deploy.metadata.generation


def test_error_statuses(apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        apps_v1.read_namespaced_deployment("nope", "shop")
    body = _status(missing.value)
    assert missing.value.status == 404 and missing.value.reason
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == "NotFound" and body["code"] == 404
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    assert body["message"] == 'deployments.apps "nope" not found'

    stale = apps_v1.read_namespaced_deployment("web", "shop")
    apps_v1.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"x": "1"}}})
    stale.spec.replicas = 6
    with pytest.raises(ApiException) as conflict:
        apps_v1.replace_namespaced_deployment("web", "shop", stale)
    assert conflict.value.status == 409 and _status(conflict.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as conflict:
        apps_v1.patch_namespaced_deployment("web", "shop", {"metadata": {
            "resourceVersion": stale.metadata.resource_version}, "spec": {"replicas": 6}})
    assert conflict.value.status == 409

    existing = apps_v1.read_namespaced_deployment("web", "shop")
    existing.metadata.resource_version = None
    with pytest.raises(ApiException) as exists:
        apps_v1.create_namespaced_deployment("shop", existing)
    assert exists.value.status == 409 and _status(exists.value)["reason"] == "AlreadyExists"

    with pytest.raises(ApiException) as bad:
        apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": -1}})
    assert bad.value.status == 422 and _status(bad.value)["reason"] == "Invalid"
    with pytest.raises(ApiException) as bad_name:
        core_v1.create_namespaced_secret("shop", {"metadata": {"name": "Not_Valid"}})
    assert bad_name.value.status == 422
    with pytest.raises(ApiException) as bad_ns:
        core_v1.list_namespaced_pod("Bad_NS")
    assert bad_ns.value.status == 422


def test_create_deployment_and_delete(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                      core_v1: client.CoreV1Api) -> None:
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="api", namespace="shop"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels={"app": "api"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "api"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="api", image="api:1")]))))
    created = apps_v1.create_namespaced_deployment("shop", body)
    assert created.metadata.uid and created.metadata.generation == 1
    wait_until(lambda: cluster.is_healthy("shop", "api"))
    apps_v1.delete_namespaced_deployment("api", "shop")
    wait_until(lambda: not core_v1.list_namespaced_pod("shop", label_selector="app=api").items)
    assert not apps_v1.list_namespaced_replica_set("shop", label_selector="app=api").items


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_eviction_respects_pdb(cluster: SandboxCluster, core_v1: client.CoreV1Api) -> None:
    # The controller only reconciles when told to: otherwise a replacement pod could turn
    # ready between the two evictions on a slow machine, and the second would be allowed.
    cluster.tick()
    assert cluster.is_healthy("shop", "web")
    pods = core_v1.list_namespaced_pod("shop", label_selector="app=web").items
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=pods[0].metadata.name,
                                                               namespace="shop"))
    core_v1.create_namespaced_pod_eviction(pods[0].metadata.name, "shop", eviction)
    names = {p.metadata.name for p in core_v1.list_namespaced_pod("shop", label_selector="app=web").items}
    assert pods[0].metadata.name not in names
    # 2 healthy left, minAvailable 2: evicting another must be refused
    victim = sorted(names)[0]
    with pytest.raises(ApiException) as refused:
        core_v1.create_namespaced_pod_eviction(victim, "shop", client.V1Eviction(
            metadata=client.V1ObjectMeta(name=victim, namespace="shop")))
    assert refused.value.status == 429
    assert _status(refused.value)["reason"] == "TooManyRequests"
    cluster.tick()  # the ReplicaSet creates a replacement
    cluster.tick()  # which turns ready
    assert cluster.is_healthy("shop", "web")
    kinds = [a["kind"] for a in cluster.actions(namespace="shop", include_failed=True)]
    assert kinds == ["evict", "evict"]
    assert len(cluster.actions(kind="evict")) == 1


def test_job_runs_to_success(cluster: SandboxCluster, batch_v1: client.BatchV1Api) -> None:
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="log-cleanup-1", labels={"zerotouch.io/job": "log-cleanup"}),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            restart_policy="Never",
            containers=[client.V1Container(name="cleanup", image="busybox", command=["true"])]))))
    batch_v1.create_namespaced_job("shop", job)
    done = wait_until(lambda: batch_v1.read_namespaced_job("log-cleanup-1", "shop").status.succeeded)
    assert done == 1
    status = batch_v1.read_namespaced_job("log-cleanup-1", "shop").status
    assert any(c.type == "Complete" and c.status == "True" for c in status.conditions)
    assert [j.metadata.name for j in batch_v1.list_namespaced_job("shop").items] == ["log-cleanup-1"]
    assert [a["kind"] for a in cluster.actions(namespace="shop")] == ["job"]


def test_secrets_round_trip(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_secret("shop", client.V1Secret(
        metadata=client.V1ObjectMeta(name="api-token"), string_data=None, data={"t": "YQ=="}))
    core_v1.patch_namespaced_secret("api-token", "shop", {"data": {"u": "Yg=="}})
    secret = core_v1.read_namespaced_secret("api-token", "shop")
    assert secret.data == {"t": "YQ==", "u": "Yg=="}
    secret.data = {"v": "Yw=="}
    assert core_v1.replace_namespaced_secret("api-token", "shop", secret).data == {"v": "Yw=="}
    names = {s.metadata.name for s in core_v1.list_namespaced_secret("shop").items}
    assert names == {"api-token", "checkout-db"}
