# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index,arg-type,operator,assignment,type-var"
"""stuck-pending, stuck-rollout, crashloop on a StatefulSet, volume-filling: each seen the way
the stock kube-prometheus rules read it, and each cleared by the remedy a responder applies."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from activities.kubernetes_actions import rollback_plan
from sandbox import SandboxCluster, inject_via_http
from tests.support.kube import retry_on_conflict

from .conftest import wait_until
from .scrape import values

RESTART = {"spec": {"template": {"metadata": {"annotations": {
    "kubectl.kubernetes.io/restartedAt": "2024-05-01T00:00:00Z"}}}}}


def _pods(core_v1: client.CoreV1Api, selector: str) -> list[client.V1Pod]:
    return list(core_v1.list_namespaced_pod("shop", label_selector=selector).items)


def _waiting(pod: client.V1Pod) -> str:
    state = pod.status.container_statuses[0].state
    return str(state.waiting.reason) if state.waiting else ""


def test_stuck_pending_until_rollout_restart(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                             core_v1: client.CoreV1Api) -> None:
    fault = cluster.inject("stuck-pending", namespace="shop", deployment="checkout")
    assert fault["template_hash"]
    wait_until(lambda: len(pods := _pods(core_v1, "app=checkout")) == 2 and all(
        p.status.phase == "Pending" and _waiting(p) == "ContainerCreating" for p in pods))
    pod = _pods(core_v1, "app=checkout")[0].metadata.name
    assert values(cluster, "kube_pod_status_phase", pod=pod, phase="Pending") == [1]
    assert values(cluster, "kube_pod_container_status_waiting_reason", pod=pod,
                  reason="ContainerCreating") == [1]
    cluster.tick()  # still stuck a tick later: nothing but a new template helps
    assert all(p.status.phase == "Pending" for p in _pods(core_v1, "app=checkout"))
    assert not cluster.is_healthy("shop", "checkout")
    apps_v1.patch_namespaced_deployment("checkout", "shop", RESTART)
    wait_until(lambda: cluster.is_healthy("shop", "checkout"))
    assert cluster.faults()["resolved"][-1]["resolved_by"] == "new pod template"
    assert not values(cluster, "kube_pod_container_status_waiting_reason", namespace="shop")


def _rollback(apps_v1: client.AppsV1Api, name: str) -> None:
    """What zerotouch's rollback action sends: the previous revision's template, guarded by
    the resourceVersion it read (so a controller write in between means read again)."""
    def attempt() -> Any:
        api = apps_v1.api_client
        deploy = api.sanitize_for_serialization(apps_v1.read_namespaced_deployment(name, "shop"))
        sets = api.sanitize_for_serialization(
            apps_v1.list_namespaced_replica_set("shop", label_selector=f"app={name}").items)
        plan = rollback_plan(deploy, sets, "test-rollback")
        return apps_v1.patch_namespaced_deployment(name, "shop", plan.patch)

    retry_on_conflict(attempt)


def test_stuck_rollout_exceeds_progress_deadline_and_rollback_fixes_it(
        cluster: SandboxCluster, apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api) -> None:
    apps_v1.patch_namespaced_deployment("web", "shop", {"spec": {"progressDeadlineSeconds": 120}})
    cluster.inject("stuck-rollout", namespace="shop", deployment="web")
    image = apps_v1.read_namespaced_deployment("web", "shop").spec.template.spec.containers[0].image
    assert image == "registry.local/shop/web:0.0.0-does-not-exist"
    def new_and_old() -> tuple[list[client.V1Pod], list[client.V1Pod]]:
        pods = _pods(core_v1, "app=web")
        return ([p for p in pods if p.spec.containers[0].image == image],
                [p for p in pods if p.spec.containers[0].image != image])

    # The new pods never pull their image; the old ones keep serving, as a rolling update leaves them.
    wait_until(lambda: len(new_and_old()[0]) == 3 and all(
        p.status.phase == "Pending" and _waiting(p) == "ImagePullBackOff" for p in new_and_old()[0]))
    assert len(old := new_and_old()[1]) == 3 and all(p.status.container_statuses[0].ready for p in old)

    def progressing() -> dict[str, float]:
        return {status: values(cluster, "kube_deployment_status_condition", deployment="web",
                               condition="Progressing", status=status)[0]
                for status in ("true", "false")}

    assert progressing() == {"true": 1, "false": 0}  # not yet past the deadline
    cluster.advance_clock(121)
    wait_until(lambda: progressing() == {"true": 0, "false": 1})
    cond = next(c for c in apps_v1.read_namespaced_deployment("web", "shop").status.conditions
                if c.type == "Progressing")
    assert (cond.status, cond.reason) == ("False", "ProgressDeadlineExceeded")
    cluster.tick()
    assert not cluster.is_healthy("shop", "web")
    _rollback(apps_v1, "web")
    wait_until(lambda: cluster.is_healthy("shop", "web") and progressing() == {"true": 1, "false": 0})
    assert cluster.faults()["resolved"][-1]["resolved_by"] == "rolled back"


@pytest.mark.parametrize("target", ["statefulset/db", "sts/db"])
def test_crashloop_on_a_statefulset(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                    core_v1: client.CoreV1Api, target: str) -> None:
    fault = inject_via_http(cluster.url, "crashloop", "shop", target)["fault"]
    assert (fault["target_kind"], fault["deployment"]) == ("StatefulSet", "db")
    wait_until(lambda: _waiting(core_v1.read_namespaced_pod("db-0", "shop")) == "CrashLoopBackOff")
    assert max(values(cluster, "kube_pod_container_status_restarts_total", pod="db-0")) >= 1
    assert values(cluster, "kube_pod_owner", pod="db-0", owner_kind="StatefulSet") == [1]
    assert not cluster.is_healthy("shop", target)
    assert cluster.is_healthy("shop", "web")  # the Deployment of the same namespace is untouched
    apps_v1.patch_namespaced_stateful_set("db", "shop", RESTART)
    wait_until(lambda: cluster.is_healthy("shop", "statefulset/db"))
    assert not values(cluster, "kube_pod_container_status_waiting_reason", pod="db-0")


def test_crashloop_on_a_daemonset_with_type_first_target(cluster: SandboxCluster,
                                                         core_v1: client.CoreV1Api) -> None:
    inject_via_http(cluster.url, "crashloop", "daemonset", "kube-system/node-agent")
    wait_until(lambda: all(_waiting(p) == "CrashLoopBackOff" for p in core_v1.list_namespaced_pod(
        "kube-system", label_selector="app=node-agent").items))
    assert not cluster.is_healthy("kube-system", "ds/node-agent")
    inject_via_http(cluster.url, "clear", "kube-system", "daemonset/node-agent")
    wait_until(lambda: cluster.is_healthy("kube-system", "ds/node-agent"))


def test_volume_filling_until_the_claim_is_expanded(cluster: SandboxCluster,
                                                    core_v1: client.CoreV1Api) -> None:
    cluster.inject("volume-filling", namespace="shop", deployment="pvc/data-db-0")
    page = "/metrics/kubelet"

    def free_ratio() -> float:
        available = values(cluster, "kubelet_volume_stats_available_bytes", page,
                           persistentvolumeclaim="data-db-0")[0]
        return available / values(cluster, "kubelet_volume_stats_capacity_bytes", page,
                                  persistentvolumeclaim="data-db-0")[0]

    first = free_ratio()
    assert 0 < first < 0.03
    assert values(cluster, "kubelet_volume_stats_used_bytes", page,
                  persistentvolumeclaim="data-db-0")[0] > 0
    cluster.advance_clock(300)
    assert 0 < free_ratio() < first  # and it keeps falling
    other = values(cluster, "kubelet_volume_stats_available_bytes", page,
                   persistentvolumeclaim="data-db-1")[0]
    assert other / 2**30 > 0.5  # the other replica's claim is fine

    def expand() -> client.V1PersistentVolumeClaim:
        claim = core_v1.read_namespaced_persistent_volume_claim("data-db-0", "shop")
        claim.spec.resources.requests["storage"] = "2Gi"
        return core_v1.replace_namespaced_persistent_volume_claim("data-db-0", "shop", claim)

    retry_on_conflict(expand)
    wait_until(lambda: not cluster.faults()["active"])
    assert cluster.faults()["resolved"][-1]["resolved_by"] == "volume expanded"
    assert free_ratio() > 0.5


def test_fault_targets_are_checked(cluster: SandboxCluster) -> None:
    with pytest.raises(ValueError, match="Deployment"):
        cluster.inject("stuck-rollout", namespace="shop", deployment="statefulset/db")
    with pytest.raises(ValueError, match="unknown target type"):
        cluster.inject("crashloop", namespace="shop", deployment="cronjob/nightly-report")
    with pytest.raises(ValueError, match="no persistentvolumeclaim"):
        cluster.inject("volume-filling", namespace="shop", deployment="ghost")
