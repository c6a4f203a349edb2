"""Pod-only alerts, as kube-prometheus sends them: owner resolution, one incident per workload, one action."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.support.receiver import Receiver
from tests.support.zt import alert, open_incident, running_workers, wait_for
from tests.workflows.policies import make_policy
from zerotouch.alerts import AlertEvent, incident_id_for

GROUP_BY = ["alertname", "namespace", "workload"]
# The labels kube-state-metrics' scrape adds to every series, and so to every alert computed from them.
EXPORTER = {"job": "kube-state-metrics", "service": "kube-state-metrics", "endpoint": "https-main",
            "instance": "10.0.0.7:8443"}


@pytest.fixture
def cluster() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _pods(sandbox: SandboxCluster, namespace: str, prefix: str) -> list[str]:
    items = httpx.get(f"{sandbox.url}/api/v1/namespaces/{namespace}/pods").json()["items"]
    return sorted(p["metadata"]["name"] for p in items if p["metadata"]["name"].startswith(prefix))


def _crashloop(pod: str, **extra: str) -> AlertEvent:
    return alert("KubePodCrashLooping", severity="warning", namespace="shop", pod=pod, container="app",
                 **EXPORTER, **extra)


def _incident_of(event: AlertEvent, cluster: str) -> str:
    return incident_id_for(event, GROUP_BY, cluster)


async def test_three_crashlooping_pods_are_one_incident_and_one_restart(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    pods = [p for p in _pods(sandbox, "shop", "web-") if not p.startswith("web-api-")]
    assert len(pods) == 3
    events = [_crashloop(pod) for pod in pods]
    [incident_id] = {_incident_of(event, cluster) for event in events}
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        # Separate deliveries, as Alertmanager sends them when the pods start crashing at different times.
        for event in events:
            handle = await open_incident(time_env.client, cluster, event, make_policy(), incident_id=incident_id)
        status = await wait_for(handle, lambda s: s.state == "resolved")
    assert status.runbook == "restart-crashlooping" and status.target == "shop/web"
    assert status.service == "shop/web", "the exporter's service label is not what broke"
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
    replicaset = pods[0].rsplit("-", 1)[0]
    resolved = [e.message for e in status.timeline if e.message.startswith("workload:")]
    assert resolved == [f"workload: pod shop/{pods[0]} → replicaset shop/{replicaset} → deployment shop/web"]
    assert sandbox.is_healthy("shop", "web")


async def test_a_replaced_pod_still_resolves_by_its_name(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    gone = _pods(sandbox, "shop", "web-")[0].rsplit("-", 1)[0] + "-zz9zz"  # its ReplicaSet's, no such pod
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, _crashloop(gone), make_policy())
        status = await wait_for(handle, lambda s: s.state == "resolved")
    assert f"workload: pod shop/{gone} (gone) → by its name → deployment shop/web" in [
        e.message for e in status.timeline]
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1


@pytest.mark.parametrize(("pod", "reason"), [
    ("db-0", "acts on Deployments, and pod shop/db-0 → statefulset shop/db"),
    ("cache-0", "no statefulset shop/cache"),  # a StatefulSet pod already gone, with its StatefulSet
    ("hand-made", "not one a controller makes"),
])
async def test_pods_no_deployment_owns_escalate_without_action(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, pod: str, reason: str
) -> None:
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, _crashloop(pod), make_policy())
        status = await wait_for(handle, lambda s: s.state == "escalated")
    assert any(reason in e.message for e in status.timeline if e.kind == "escalation"), status.timeline
    assert sandbox.actions(namespace="shop") == []


async def test_a_bare_pod_is_never_acted_on(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "scratch", "namespace": "shop"},
           "spec": {"containers": [{"name": "app", "image": "busybox:1.36.1"}]}}
    assert httpx.post(f"{sandbox.url}/api/v1/namespaces/shop/pods", json=pod).status_code == 201
    writes_before = len(sandbox.actions(namespace="shop"))
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, _crashloop("scratch"), make_policy())
        status = await wait_for(handle, lambda s: s.state == "escalated")
    assert any("never acts on a bare pod" in e.message for e in status.timeline), status.timeline
    assert len(sandbox.actions(namespace="shop")) == writes_before


async def test_runs_of_one_cronjob_merge_into_its_incident(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    """KubeJobFailed names each run's Job; the relay's key differs per run, owner resolution finds one CronJob."""
    cronjob = httpx.get(f"{sandbox.url}/apis/batch/v1/namespaces/shop/cronjobs/nightly-report").json()
    runs = ["nightly-report-28912345", "nightly-report-28912405"]
    for job in runs:
        body = {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": job, "namespace": "shop", "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly-report",
                    "uid": cronjob["metadata"]["uid"], "controller": True}]},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "job", "image": "busybox:1.36.1"}]}}}}
        assert httpx.post(f"{sandbox.url}/apis/batch/v1/namespaces/shop/jobs", json=body).status_code == 201
    events = [alert("KubeJobFailed", severity="warning", namespace="shop", job_name=job, **EXPORTER) for job in runs]
    home_labels = {**events[0].labels, "workload": "nightly-report"}
    home = incident_id_for(events[0].model_copy(update={"labels": home_labels}), GROUP_BY, cluster)
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        for event in events:
            handle = await open_incident(time_env.client, cluster, event, make_policy(),
                                         incident_id=_incident_of(event, cluster))
            merged = await handle.result()
            assert merged.state == "closed"
            job = event.labels["job_name"]
            assert f"merged into {home} (label job_name={job} → job shop/{job} → cronjob shop/nightly-report)" in [
                e.message for e in merged.timeline]
        home_handle = time_env.client.get_workflow_handle(home)
        status = await wait_for(home_handle, lambda s: s.alerts_received == 2 and s.state != "open")
    assert status.state != "closed" and status.service == "nightly-report"
    assert {e.message for e in status.timeline if e.message.startswith("workload:")} == {
        "workload: label job_name=nightly-report-28912345 → job shop/nightly-report-28912345"
        " → cronjob shop/nightly-report"}


async def test_an_escalation_carries_the_alerts_own_evidence(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    """A stock alert with no automated fix goes to a human with what its authors wrote for them."""
    event = alert("KubeNodeNotReady", severity="critical", node="sandbox-node-2", **EXPORTER)
    event.annotations = {
        "summary": "Node is not ready.",
        "description": "sandbox-node-2 has been unready for more than 15 minutes.",
        "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodenotready",
    }
    with Receiver() as receiver:
        async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
            handle = await open_incident(time_env.client, cluster, event, make_policy(receiver.url))
            status = await wait_for(handle, lambda s: s.state == "escalated")
            deadline = asyncio.get_running_loop().time() + 30
            while not any(path == "/chat" for path, _ in receiver.received):
                assert asyncio.get_running_loop().time() < deadline, "no chat notification"
                await asyncio.sleep(0.1)
    assert status.service == "sandbox-node-2" and status.attempts == 0
    [chat] = [body["text"] for path, body in receiver.received if path == "/chat"]
    for text in event.annotations.values():
        assert text in chat, chat


def test_incident_ids_join_pods_and_keep_prefix_sharing_deployments_apart() -> None:
    now = datetime.now(UTC)
    first = AlertEvent(fingerprint="a", status="firing", starts_at=now,
                       labels={"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d9c5fb8d4-x2kqz"})
    other = first.model_copy(update={"labels": {**first.labels, "pod": "web-api-6f8b9c7d5b-qwrtz"}})
    assert _incident_of(first, "c") != _incident_of(other, "c")
