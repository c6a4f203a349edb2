# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index,arg-type,operator,assignment,type-var"
"""Nodes the sandbox can lose and get back: cordons, NotReady and Unreachable kubelets,
the provider's reboot, and what scheduling, eviction and the exporters make of them."""

from __future__ import annotations

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox import SandboxCluster
from sandbox.client import (
    fail_node_via_http,
    node_provider_via_http,
    node_state_via_http,
    reset_via_http,
)
from sandbox.core import SandboxCore

from .conftest import Kubectl, wait_until
from .scrape import values

NODE_1, NODE_2, NODE_3 = "sandbox-node-1", "sandbox-node-2", "sandbox-node-3"
CORDON = {"spec": {"unschedulable": True}}
UNCORDON = {"spec": {"unschedulable": False}}


def _pods(core_v1: client.CoreV1Api, namespace: str = "shop",
          selector: str = "") -> list[client.V1Pod]:
    return core_v1.list_namespaced_pod(namespace, label_selector=selector).items


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _ready_condition(node: client.V1Node) -> client.V1NodeCondition:
    return next(c for c in node.status.conditions if c.type == "Ready")


def _merge_patch_node(cluster: SandboxCluster, name: str, body: dict[str, object]) -> None:
    """kubectl's own cordon sends a strategic merge patch; a plain merge patch must work too."""
    resp = httpx.patch(f"{cluster.url}/api/v1/nodes/{name}", json=body, timeout=10,
                       headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status_code == 200, resp.text


def _scale(apps_v1: client.AppsV1Api, name: str, replicas: int) -> None:
    apps_v1.patch_namespaced_deployment_scale(name, "shop", {"spec": {"replicas": replicas}})


def test_cordon_keeps_new_pods_off_the_node(cluster: SandboxCluster, core_v1: client.CoreV1Api,
                                            apps_v1: client.AppsV1Api, kubectl: Kubectl) -> None:
    core_v1.patch_node(NODE_1, CORDON)  # strategic merge patch, as `kubectl cordon`
    before = {p.metadata.uid for p in _pods(core_v1, selector="app=web")}
    _scale(apps_v1, "web", 6)
    wait_until(lambda: apps_v1.read_namespaced_deployment("web", "shop").status.ready_replicas == 6)
    new = [p for p in _pods(core_v1, selector="app=web") if p.metadata.uid not in before]
    assert len(new) == 3 and {p.spec.node_name for p in new} == {NODE_2, NODE_3}
    assert node_state_via_http(cluster.url, NODE_1)["unschedulable"] is True
    assert values(cluster, "kube_node_spec_unschedulable", node=NODE_1) == [1.0]
    assert "Ready,SchedulingDisabled" in kubectl("get", "node", NODE_1).stdout
    # The DaemonSet's pod stays: daemon pods tolerate cordons.
    assert [p.spec.node_name for p in _pods(core_v1, "kube-system", "app=node-agent")
            if p.spec.node_name == NODE_1] == [NODE_1]

    _merge_patch_node(cluster, NODE_1, UNCORDON)
    assert values(cluster, "kube_node_spec_unschedulable", node=NODE_1) == [0.0]
    _scale(apps_v1, "web", 9)
    wait_until(lambda: sum(p.spec.node_name == NODE_1 for p in _pods(core_v1, selector="app=web"))
               == 3)


def test_not_ready_and_unreachable_nodes(cluster: SandboxCluster, core_v1: client.CoreV1Api,
                                         apps_v1: client.AppsV1Api, kubectl: Kubectl) -> None:
    on_2 = {p.metadata.uid for p in _pods(core_v1) if p.spec.node_name == NODE_2}
    assert on_2
    state = fail_node_via_http(cluster.url, NODE_2, "NotReady")
    assert state == {"name": NODE_2, "ready": "False", "unschedulable": False,
                     "fault": "NotReady", "provider": None}
    node = core_v1.read_node(NODE_2)
    assert (_ready_condition(node).status, _ready_condition(node).reason) == (
        "False", "KubeletNotReady")
    assert [(t.key, t.effect) for t in node.spec.taints] == [
        ("node.kubernetes.io/not-ready", "NoSchedule")]

    def pods_not_ready() -> bool:
        still = [p for p in _pods(core_v1) if p.spec.node_name == NODE_2]
        return {p.metadata.uid for p in still} == on_2 and not any(_ready(p) for p in still)

    wait_until(pods_not_ready)  # bound still, as before a real cluster evicts them
    assert apps_v1.read_namespaced_deployment("web", "shop").status.ready_replicas == 2
    assert values(cluster, "kube_node_status_condition", node=NODE_2, condition="Ready",
                  status="true") == [0.0]
    assert values(cluster, "kube_node_status_condition", node=NODE_2, condition="Ready",
                  status="false") == [1.0]
    assert "NotReady" in kubectl("get", "node", NODE_2).stdout

    assert fail_node_via_http(cluster.url, NODE_3, "Unreachable")["ready"] == "Unknown"
    node = core_v1.read_node(NODE_3)
    assert (_ready_condition(node).status, _ready_condition(node).reason) == (
        "Unknown", "NodeStatusUnknown")
    assert values(cluster, "kube_node_status_condition", node=NODE_3, condition="Ready",
                  status="unknown") == [1.0]
    assert values(cluster, "kube_node_spec_taint", node=NODE_3,
                  key="node.kubernetes.io/unreachable", effect="NoSchedule") == [1.0]

    with pytest.raises(ValueError, match="mode"):
        fail_node_via_http(cluster.url, NODE_2, "Sleepy")
    resp = httpx.post(f"{cluster.url}/sandbox/v1/nodes/no-such-node/fail",
                      json={"mode": "NotReady"}, timeout=10)
    assert resp.status_code == 404
    assert fail_node_via_http(cluster.url, NODE_2, "Ready")["fault"] is None
    wait_until(lambda: all(_ready(p) for p in _pods(core_v1) if p.spec.node_name == NODE_2))
    reset_via_http(cluster.url)
    assert node_state_via_http(cluster.url, NODE_3)["ready"] == "True"
    assert node_state_via_http(cluster.url, NODE_3)["fault"] is None


def test_pending_until_a_node_can_take_the_pod(cluster: SandboxCluster,
                                               core_v1: client.CoreV1Api,
                                               apps_v1: client.AppsV1Api,
                                               batch_v1: client.BatchV1Api) -> None:
    core_v1.patch_node(NODE_1, CORDON)
    _merge_patch_node(cluster, NODE_2, CORDON)
    fail_node_via_http(cluster.url, NODE_3, "NotReady")
    before = {p.metadata.uid for p in _pods(core_v1, selector="app=web")}
    _scale(apps_v1, "web", 4)
    core_v1.create_namespaced_pod("shop", {"metadata": {"name": "adhoc"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    batch_v1.create_namespaced_job("shop", {"metadata": {"name": "once", "annotations": {
        "sandbox.zerotouch.io/job-outcome": "Running"}}, "spec": {
        "template": {"spec": {"restartPolicy": "Never",
                              "containers": [{"name": "c", "image": "busybox"}]}}}})

    def waiting() -> list[client.V1Pod]:
        found = [p for p in _pods(core_v1) if p.metadata.uid not in before
                 and (p.metadata.name == "adhoc" or p.metadata.name.startswith(("web-", "once-")))
                 and p.status.conditions
                 and any(c.type == "PodScheduled" and c.status == "False"
                         for c in p.status.conditions)]
        return found if len(found) == 3 else []

    for pod in wait_until(waiting):
        assert pod.spec.node_name is None and pod.status.phase == "Pending"
        scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
        assert scheduled.reason == "Unschedulable"
        assert "1 node(s) were not ready" in scheduled.message

    _merge_patch_node(cluster, NODE_2, UNCORDON)

    def running_on_2() -> bool:
        pods = {p.metadata.name: p for p in _pods(core_v1)}
        names = ["adhoc", *(n for n in pods if n.startswith("once-"))]
        web_new = [p for p in _pods(core_v1, selector="app=web") if p.metadata.uid not in before]
        placed = [pods[n] for n in names] + web_new
        return len(placed) == 3 and all(p.spec.node_name == NODE_2 and _ready(p)
                                        for p in placed)

    wait_until(running_on_2)


def test_provider_reboot_moves_the_pods_and_brings_the_node_back(
        cluster: SandboxCluster, core_v1: client.CoreV1Api, apps_v1: client.AppsV1Api) -> None:
    core_v1.patch_node(NODE_1, CORDON)  # as a recovery would: cordon, then reboot
    on_1 = {p.metadata.name: p.metadata.uid for p in _pods(core_v1)
            if p.spec.node_name == NODE_1}
    daemon = next(p for p in _pods(core_v1, "kube-system", "app=node-agent")
                  if p.spec.node_name == NODE_1)
    boot = core_v1.read_node(NODE_1).status.node_info.boot_id
    started = node_provider_via_http(cluster.url, NODE_1, "reboot", delay_seconds=600)
    assert set(started) == {"node", "action", "ready_at"} and started["action"] == "reboot"
    # The pods died with the call itself, not a tick later; the DaemonSet's stays.
    assert not {p.metadata.uid for p in _pods(core_v1)} & set(on_1.values())
    left = core_v1.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE_1}").items
    assert [p.metadata.uid for p in left] == [daemon.metadata.uid]
    assert node_provider_via_http(cluster.url, NODE_1, "replace", 5) == started  # idempotent
    state = node_state_via_http(cluster.url, NODE_1)
    assert (state["ready"], state["fault"]) == ("False", "NotReady")
    assert state["provider"] == {"action": "reboot", "ready_at": started["ready_at"]}

    def moved() -> bool:
        web = apps_v1.read_namespaced_deployment("web", "shop").status
        db = apps_v1.read_namespaced_stateful_set("db", "shop").status
        mine = [p for p in _pods(core_v1) if p.metadata.labels.get("app") in ("web", "db")]
        return (web.ready_replicas == 3 and db.ready_replicas == 2
                and all(p.spec.node_name in (NODE_2, NODE_3) for p in mine))

    wait_until(moved)
    replaced = {p.metadata.name for p in _pods(core_v1, selector="app=db")}
    assert {n for n in on_1 if n.startswith("db-")} <= replaced  # same names, other nodes
    agent = core_v1.read_namespaced_pod(daemon.metadata.name, "kube-system")
    assert agent.metadata.uid == daemon.metadata.uid and not _ready(agent)

    cluster.advance_clock(599)
    assert node_state_via_http(cluster.url, NODE_1)["ready"] == "False"
    cluster.advance_clock(1)
    assert node_state_via_http(cluster.url, NODE_1) == {
        "name": NODE_1, "ready": "True", "unschedulable": True, "fault": None, "provider": None}
    node = core_v1.read_node(NODE_1)
    assert not node.spec.taints and node.status.node_info.boot_id != boot
    wait_until(lambda: _ready(core_v1.read_namespaced_pod(daemon.metadata.name, "kube-system")))
    assert values(cluster, "kube_node_status_condition", node=NODE_1, condition="Ready",
                  status="true") == [1.0]


def test_eviction_from_a_cordoned_node_honours_the_budget(cluster: SandboxCluster,
                                                          core_v1: client.CoreV1Api) -> None:
    policy_v1 = client.PolicyV1Api(core_v1.api_client)
    victim = next(p for p in _pods(core_v1, selector="app=web") if p.spec.node_name == NODE_1)
    core_v1.patch_node(NODE_1, CORDON)
    policy_v1.patch_namespaced_pod_disruption_budget("web", "shop", {"spec": {"minAvailable": 3}})
    wait_until(lambda: policy_v1.read_namespaced_pod_disruption_budget("web", "shop")
               .status.disruptions_allowed == 0)
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=victim.metadata.name,
                                                              namespace="shop"))
    with pytest.raises(ApiException) as refused:
        core_v1.create_namespaced_pod_eviction(victim.metadata.name, "shop", eviction)
    assert refused.value.status == 429
    policy_v1.patch_namespaced_pod_disruption_budget("web", "shop", {"spec": {"minAvailable": 2}})
    wait_until(lambda: policy_v1.read_namespaced_pod_disruption_budget("web", "shop")
               .status.disruptions_allowed == 1)
    core_v1.create_namespaced_pod_eviction(victim.metadata.name, "shop", eviction)

    def replaced_elsewhere() -> bool:
        web = _pods(core_v1, selector="app=web")
        return (len(web) == 3 and all(_ready(p) for p in web)
                and NODE_1 not in {p.spec.node_name for p in web})

    wait_until(replaced_elsewhere)


def test_provider_validation_and_unknown_nodes(cluster: SandboxCluster) -> None:
    with pytest.raises(ValueError, match="action"):
        node_provider_via_http(cluster.url, NODE_1, "melt")
    with pytest.raises(ValueError, match="delay_seconds"):
        node_provider_via_http(cluster.url, NODE_1, "reboot", delay_seconds=3601)
    with pytest.raises(ValueError, match="no node"):
        node_state_via_http(cluster.url, "sandbox-node-9")
    resp = httpx.post(f"{cluster.url}/sandbox/v1/nodes/sandbox-node-9/provider",
                      json={"action": "reboot"}, timeout=10)
    assert resp.status_code == 404
    # Nothing above touched a node.
    assert all(node_state_via_http(cluster.url, n)["fault"] is None
               for n in (NODE_1, NODE_2, NODE_3))


def test_node_faults_survive_a_snapshot() -> None:
    core = SandboxCore()
    core.seed()
    core.nodes.fail(NODE_2, "Unreachable")
    started = core.nodes.provider(NODE_3, "replace", 30)
    restored = SandboxCore()
    restored.restore(core.snapshot())
    assert restored.nodes.describe(NODE_2)["fault"] == "Unreachable"
    assert restored.nodes.describe(NODE_3)["provider"] == {"action": "replace",
                                                           "ready_at": started["ready_at"]}
    restored.reset()
    assert restored.nodes.describe(NODE_2) == {"name": NODE_2, "ready": "True",
                                               "unschedulable": False, "fault": None,
                                               "provider": None}
