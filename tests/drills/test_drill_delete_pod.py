"""delete_pod drills on the sandbox through the official Kubernetes client: one pod of one Deployment
deleted and replaced by its ReplicaSet with zerotouch taking no action, a retried injection that deletes
nothing more, refusals (no pod, two workloads, a namespace outside the allow-list), and a drill
cancelled midway that leaves no mark and no second deletion behind."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiClient, AppsV1Api, Configuration, CoreV1Api
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.drill_faults import DrillFaultActivities
from activities.drill_pods import MARK, DrillPods, PodChoice
from sandbox.demo import deployment
from tests.drills.conftest import DrillStack
from tests.support.waiting import eventually
from workflows.drill import DrillWorkflow
from zerotouch import activity_errors as errors
from zerotouch.drill_models import DRILL_WORKFLOW, DrillFault, DrillInput, DrillResult, drill_workflow_id
from zerotouch.drills import Drill, DrillsPolicy
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy

pytestmark = pytest.mark.asyncio(loop_scope="session")

DRILLS_SETTINGS: dict[str, Any] = {"environment": "sandbox", "namespaces": ["shop"]}
DRILLS: list[dict[str, Any]] = [
    {"name": "web-pod", "fault": "delete_pod", "target": "shop/web", "selector": {"app": "web"}, "deadline": "60s"},
    {"name": "no-pods", "fault": "delete_pod", "target": "shop/web", "selector": {"app": "nothing-here"}},
    {"name": "twins", "fault": "delete_pod", "target": "shop/twin-a", "selector": {"team": "twins"}},
    {"name": "email-pod", "fault": "delete_pod", "target": "shop/email-worker", "selector": {"app": "email-worker"},
     "deadline": "5m"},
]


@contextlib.contextmanager
def kube(drills: DrillStack) -> Iterator[tuple[CoreV1Api, AppsV1Api]]:
    configuration = Configuration()
    configuration.host = drills.sandbox.url
    with ApiClient(configuration) as client:
        yield CoreV1Api(client), AppsV1Api(client)


def raw(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A client call answered as plain JSON, as the activities read it."""
    answer: dict[str, Any] = json.loads(method(*args, _preload_content=False, **kwargs).data)
    return answer


def pods_of(drills: DrillStack, app: str) -> dict[str, dict[str, Any]]:
    with kube(drills) as (core, _):
        items = raw(core.list_namespaced_pod, "shop", label_selector=f"app={app}")["items"]
    return {p["metadata"]["name"]: {"annotations": p["metadata"].get("annotations") or {}, "ready": any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])} for p in items}


def pod_deletes(drills: DrillStack, app: str) -> list[str]:
    return [str(a["name"]) for a in drills.sandbox.actions(namespace="shop")
            if a["method"] == "DELETE" and a["resource"] == "pods" and str(a["name"]).startswith(f"{app}-")]


async def healthy(drills: DrillStack, app: str, replicas: int) -> None:
    async def all_ready() -> bool:
        pods = pods_of(drills, app)
        return len(pods) == replicas and all(p["ready"] for p in pods.values())

    await eventually(all_ready, timeout=30, what=f"shop/{app} back to {replicas} Ready pods")


async def test_one_pod_is_deleted_and_kubernetes_recovers_it_with_no_action(drills: DrillStack) -> None:
    await healthy(drills, "web", 3)
    before = pods_of(drills, "web")
    result = await drills.run("web-pod")
    assert result.passed and result.outcome == "auto_resolved", result.model_dump_json(indent=1)
    assert result.actions == [] and result.outside_target == [] and result.cleaned_up
    assert result.recover_seconds is not None and 0 < result.recover_seconds < 60
    deleted = pod_deletes(drills, "web")
    assert len(deleted) == 1 and deleted[0] in before, "one pod of shop/web deleted, nothing else"
    assert f"deleted pod shop/{deleted[0]}" in result.detail and "3/3 pods Ready" in result.detail
    after = pods_of(drills, "web")
    assert deleted[0] not in after and len(after) == 3 and all(p["ready"] for p in after.values())
    assert not any(MARK in p["annotations"] for p in after.values())


async def test_a_retried_injection_deletes_no_second_pod(drills: DrillStack) -> None:
    """The delete is applied but its answer lost (a read timeout): Temporal retries the activity,
    with the heartbeat it sent and, the worst case, without it. Neither retry deletes another pod."""
    await healthy(drills, "checkout", 2)
    policy = load_policy(drills.policy_path)
    drill = Drill(name="checkout-pod", fault="delete_pod", target="shop/checkout", selector={"app": "checkout"})
    configuration = Configuration()
    configuration.host = drills.sandbox.url
    with ApiClient(configuration) as client:
        pods = DrillPods(api_client=lambda: client, drills=lambda: policy.drills, on_sandbox=True,
                         request_timeout=(2.0, 1.0))
        async with httpx.AsyncClient(timeout=10.0) as http:
            activities = DrillFaultActivities(sandbox_url=drills.sandbox.url, relay=lambda: None, http=http, pods=pods)
            heartbeats: list[Any] = []
            first = ActivityEnvironment()
            first.info = dataclasses.replace(first.info, workflow_id="drill-checkout-pod-retry", attempt=1,
                                             scheduled_time=datetime.now(UTC) - timedelta(seconds=1))
            first.on_heartbeat = lambda *details: heartbeats.extend(details)
            # The delete applied, its answer held past the read timeout; urllib3's own retry of it then
            # meets an unavailable API server: the attempt fails after the pod is gone.
            drills.sandbox.fail_requests(status=0, method="DELETE", path_contains="/pods/checkout-",
                                         delay_after_seconds=2.5)
            drills.sandbox.fail_requests(status=503, method="DELETE", path_contains="/pods/checkout-")
            with pytest.raises(ApplicationError, match="unavailable") as failed:
                await first.run(activities.inject_drill_fault, DrillFault(drill=drill))
            assert failed.value.type == errors.API_UNAVAILABLE and not failed.value.non_retryable
            async def deleted() -> list[str]:
                return pod_deletes(drills, "checkout")

            await eventually(deleted, timeout=10, what="the first attempt's delete applied")
            assert heartbeats and heartbeats[0]["name"] == pod_deletes(drills, "checkout")[0]
            for attempt, details in ((2, heartbeats[:1]), (3, [])):  # with its heartbeat, then with it lost
                retry = ActivityEnvironment()
                retry.info = dataclasses.replace(first.info, attempt=attempt, heartbeat_details=details)
                injection = await retry.run(activities.inject_drill_fault, DrillFault(drill=drill))
                assert "nothing more deleted" in injection.detail, injection.detail
            assert len(pod_deletes(drills, "checkout")) == 1, "one pod deleted across three attempts"
    await healthy(drills, "checkout", 2)


async def test_a_selector_matching_nothing_is_refused(drills: DrillStack) -> None:
    result = await drills.run("no-pods")
    assert result.outcome == "failed" and not result.passed
    assert "no pod in namespace shop matches app=nothing-here" in result.detail, result.detail


async def test_a_selector_matching_two_workloads_is_refused(drills: DrillStack) -> None:
    with kube(drills) as (_, apps):
        for name in ("twin-a", "twin-b"):
            twin = deployment(name, 1, "registry.local/shop/twin:1.0", "64Mi", 0)
            twin["spec"]["template"]["metadata"]["labels"]["team"] = "twins"
            raw(apps.create_namespaced_deployment, "shop", twin)
        try:
            async def twins() -> bool:
                return len(pods_of(drills, "twin-a")) + len(pods_of(drills, "twin-b")) == 2

            await eventually(twins, timeout=30, what="one pod of each twin")
            result = await drills.run("twins")
        finally:
            for name in ("twin-a", "twin-b"):
                apps.delete_namespaced_deployment(name, "shop")
    assert result.outcome == "failed" and not result.passed
    assert "team=twins matches pods of 2 workloads (deployment twin-a, deployment twin-b)" in result.detail
    assert pod_deletes(drills, "twin") == []


async def test_a_namespace_outside_the_allow_list_is_refused_even_when_pinned(drills: DrillStack) -> None:
    """A drill pinned in the workflow's input skips the policy's checks; the worker checks again."""
    pinned = Drill(name="pinned", fault="delete_pod", target="kube-system/node-agent",
                   selector={"app": "node-agent"})
    handle = await drills.client.start_workflow(
        DRILL_WORKFLOW, DrillInput(name="pinned", cluster=drills.cluster, drill=pinned),
        id=drill_workflow_id("pinned", datetime.now(UTC)), task_queue=queue_for(WORKFLOWS_QUEUE, drills.cluster),
        result_type=DrillResult)
    result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.outcome == "failed" and not result.passed
    assert "namespace 'kube-system' is not in drills.namespaces (shop)" in result.detail, result.detail
    assert not [a for a in drills.sandbox.actions(namespace="kube-system") if a["method"] == "DELETE"]


async def test_a_drill_cancelled_midway_leaves_nothing_behind(drills: DrillStack) -> None:
    await healthy(drills, "email-worker", 1)
    before = len(pod_deletes(drills, "email-worker"))
    workflow_id = drill_workflow_id("email-pod", datetime.now(UTC)) + "-cancel"
    with kube(drills) as (core, _):
        nodes = [n["metadata"]["name"] for n in raw(core.list_node)["items"]]
        try:  # no node takes the replacement: the drill is still watching when it is cancelled
            for node in nodes:
                raw(core.patch_node, node, {"spec": {"unschedulable": True}})
            handle = await drills.client.start_workflow(
                DRILL_WORKFLOW, DrillInput(name="email-pod", cluster=drills.cluster), id=workflow_id,
                task_queue=queue_for(WORKFLOWS_QUEUE, drills.cluster))

            async def watching() -> bool:
                with contextlib.suppress(Exception):
                    return bool(await handle.query(DrillWorkflow.stage) == "watching")
                return False

            await eventually(watching, timeout=30, what="the drill watching its deleted pod")
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await asyncio.wait_for(handle.result(), timeout=30)
        finally:
            for node in nodes:
                raw(core.patch_node, node, {"spec": {"unschedulable": False}})
    assert len(pod_deletes(drills, "email-worker")) == before + 1, "one pod deleted, no second"
    await healthy(drills, "email-worker", 1)
    assert not any(MARK in p["annotations"] for p in pods_of(drills, "email-worker").values())


async def test_a_pod_choice_survives_the_heartbeat_round_trip_and_a_real_cluster_needs_namespaces() -> None:
    choice = PodChoice("web-abc", "uid-1", "deployment web")
    assert PodChoice.of(choice.details()) == choice
    assert PodChoice.of(None) is None and PodChoice.of({"name": "x"}) is None
    with pytest.raises(ApplicationError, match=r"not in drills\.namespaces"):
        DrillPods(api_client=lambda: ApiClient(), drills=lambda: DrillsPolicy(), on_sandbox=False).allowed(
            Drill(name="d", fault="delete_pod", target="shop/web", selector={"app": "web"}))
