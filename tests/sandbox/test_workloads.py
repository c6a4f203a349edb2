# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index,arg-type,operator,assignment,type-var"
"""StatefulSets, DaemonSets, Job pods and the demo's odd objects, through the official client."""

from __future__ import annotations

import re

from kubernetes import client

from sandbox import SandboxCluster

from .conftest import wait_until

SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
RESTART = {"spec": {"template": {"metadata": {"annotations": {
    "kubectl.kubernetes.io/restartedAt": "2024-05-01T00:00:00Z"}}}}}


def _pods(core_v1: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    return list(core_v1.list_namespaced_pod(namespace, label_selector=selector).items)


def _controller(pod: client.V1Pod) -> client.V1OwnerReference:
    refs = [r for r in pod.metadata.owner_references or [] if r.controller]
    assert len(refs) == 1, pod.metadata.name
    return refs[0]


def test_statefulset_pods_claims_and_status(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                            core_v1: client.CoreV1Api) -> None:
    sts = apps_v1.read_namespaced_stateful_set("db", "shop")
    pods = _pods(core_v1, "shop", "app=db")
    assert sorted(p.metadata.name for p in pods) == ["db-0", "db-1"]
    for pod in pods:
        ref = _controller(pod)
        assert (ref.kind, ref.name, ref.uid, ref.api_version) == (
            "StatefulSet", "db", sts.metadata.uid, "apps/v1")
        assert pod.metadata.labels["controller-revision-hash"] == sts.status.update_revision
        assert pod.spec.volumes[0].persistent_volume_claim.claim_name == f"data-{pod.metadata.name}"
    status = sts.status
    assert (status.replicas, status.ready_replicas, status.current_replicas,
            status.updated_replicas, status.available_replicas) == (2, 2, 2, 2, 2)
    assert status.current_revision == status.update_revision
    assert status.update_revision.startswith("db-")
    assert status.observed_generation == sts.metadata.generation
    claims = core_v1.list_namespaced_persistent_volume_claim("shop").items
    assert {c.metadata.name: c.status.phase for c in claims} == {
        "data-db-0": "Bound", "data-db-1": "Bound"}
    assert cluster.is_healthy("shop", "statefulset/db")


def test_statefulset_restart_and_scale(cluster: SandboxCluster, apps_v1: client.AppsV1Api,
                                       core_v1: client.CoreV1Api) -> None:
    before = {p.metadata.name: p.metadata.uid for p in _pods(core_v1, "shop", "app=db")}
    old_revision = apps_v1.read_namespaced_stateful_set("db", "shop").status.update_revision
    apps_v1.patch_namespaced_stateful_set("db", "shop", RESTART)

    def restarted() -> bool:
        sts = apps_v1.read_namespaced_stateful_set("db", "shop")
        after = {p.metadata.name: p.metadata.uid for p in _pods(core_v1, "shop", "app=db")}
        return (set(after) == set(before) and not set(after.values()) & set(before.values())
                and sts.status.current_revision == sts.status.update_revision != old_revision
                and sts.status.ready_replicas == 2
                and sts.status.observed_generation == sts.metadata.generation)

    wait_until(restarted)
    assert len(cluster.actions("shop", "db", kind="restart")) == 1
    apps_v1.patch_namespaced_stateful_set_scale("db", "shop", {"spec": {"replicas": 3}})
    wait_until(lambda: sorted(p.metadata.name for p in _pods(core_v1, "shop", "app=db"))
               == ["db-0", "db-1", "db-2"] and cluster.is_healthy("shop", "statefulset/db"))
    assert core_v1.read_namespaced_persistent_volume_claim("data-db-2", "shop").status.phase == "Bound"


def test_daemonset_one_pod_per_node_and_restart(cluster: SandboxCluster,
                                                apps_v1: client.AppsV1Api,
                                                core_v1: client.CoreV1Api) -> None:
    ds = apps_v1.read_namespaced_daemon_set("node-agent", "kube-system")
    pods = _pods(core_v1, "kube-system", "app=node-agent")
    nodes = sorted(n.metadata.name for n in core_v1.list_node().items)
    assert sorted(p.spec.node_name for p in pods) == nodes
    for pod in pods:
        assert re.fullmatch(f"node-agent-{SAFE}{{5}}", pod.metadata.name)
        ref = _controller(pod)
        assert (ref.kind, ref.name, ref.uid) == ("DaemonSet", "node-agent", ds.metadata.uid)
    s = ds.status
    assert (s.current_number_scheduled, s.desired_number_scheduled, s.number_misscheduled,
            s.number_ready, s.number_available, s.updated_number_scheduled) == (3, 3, 0, 3, 3, 3)
    assert not s.number_unavailable and s.observed_generation == ds.metadata.generation
    before = {p.metadata.uid for p in pods}
    apps_v1.patch_namespaced_daemon_set("node-agent", "kube-system", RESTART)

    def replaced() -> bool:
        now = _pods(core_v1, "kube-system", "app=node-agent")
        return (len(now) == 3 and not {p.metadata.uid for p in now} & before
                and cluster.is_healthy("kube-system", "daemonset/node-agent"))

    wait_until(replaced)
    assert len(cluster.actions("kube-system", "node-agent", kind="restart")) == 1


def test_job_pods_are_owned_by_their_job(cluster: SandboxCluster, batch_v1: client.BatchV1Api,
                                         core_v1: client.CoreV1Api) -> None:
    job = batch_v1.create_namespaced_job("default", {
        "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "migrate", "image": "registry.local/shop/migrate:1"}]}}}})

    def finished_pod() -> client.V1Pod | None:
        pods = _pods(core_v1, "default", "job-name=migrate")
        return pods[0] if pods and pods[0].status.phase == "Succeeded" else None

    wait_until(lambda: finished_pod() is not None)
    pod = finished_pod()
    assert re.fullmatch(f"migrate-{SAFE}{{5}}", pod.metadata.name)
    ref = _controller(pod)
    assert (ref.kind, ref.name, ref.uid, ref.api_version) == (
        "Job", "migrate", job.metadata.uid, "batch/v1")
    assert pod.status.container_statuses[0].state.terminated.reason == "Completed"
    batch_v1.delete_namespaced_job("migrate", "default")
    wait_until(lambda: not _pods(core_v1, "default", "job-name=migrate"))


def test_cronjob_jobs_are_owned_by_their_cronjob(cluster: SandboxCluster,
                                                 batch_v1: client.BatchV1Api,
                                                 core_v1: client.CoreV1Api) -> None:
    cronjob = batch_v1.create_namespaced_cron_job("default", {
        "metadata": {"name": "every-minute"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
    cluster.advance_clock(61)
    wait_until(lambda: cluster.jobs_of("default", "every-minute"))
    job = batch_v1.list_namespaced_job("default").items[0]
    ref = _controller(job)
    assert (ref.kind, ref.name, ref.uid) == ("CronJob", "every-minute", cronjob.metadata.uid)
    wait_until(lambda: _pods(core_v1, "default", f"job-name={job.metadata.name}"))
    assert _controller(_pods(core_v1, "default", f"job-name={job.metadata.name}")[0]).uid == \
        job.metadata.uid


def test_demo_has_a_bare_pod_and_a_prefix_sharing_deployment(
        cluster: SandboxCluster, core_v1: client.CoreV1Api, apps_v1: client.AppsV1Api) -> None:
    debug = core_v1.read_namespaced_pod("debug", "shop")
    assert not debug.metadata.owner_references
    wait_until(lambda: core_v1.read_namespaced_pod("debug", "shop").status.phase == "Running")
    web_api = apps_v1.read_namespaced_deployment("web-api", "shop")
    assert web_api.spec.replicas == 1 and cluster.is_healthy("shop", "web-api")
    names = [p.metadata.name for p in _pods(core_v1, "shop", "app=web-api")]
    assert len(names) == 1 and names[0].startswith("web-")  # the prefix `web` pods also have
