"""Kubernetes remediations against the sandbox cluster over real HTTP with the official client."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.kubernetes import KubernetesActivities
from sandbox import SandboxCluster
from zerotouch.models import ActionBounds, ActionRequest, RolloutCheck

from .conftest import Env, wait_until

FAST = RolloutCheck(namespace="shop", deployment="web", hold_for_seconds=0.3, timeout_seconds=10, poll_seconds=0.05)


def request(action: Any, key: str = "key-1", name: str = "web", **params: Any) -> ActionRequest:
    return ActionRequest(action=action, namespace="shop", name=name, params=params, idempotency_key=key,
                         incident_id="incident-test")


def deployment(kube: KubernetesActivities, name: str = "web") -> dict[str, Any]:
    return kube._read("shop", name)


def raises(kind: str, call: Any, *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(*args)
    assert caught.value.type == kind, caught.value.message
    return caught.value


def test_restart_applies_once_per_key(cluster: SandboxCluster, kube: KubernetesActivities, activity_env: Env) -> None:
    first = activity_env.env.run(kube.restart_deployment, request("restart_deployment"))
    # Same key again: what a retry after a worker crash between the API call and completion looks like.
    again = activity_env.env.run(kube.restart_deployment, request("restart_deployment"))
    assert first.applied and not first.already_applied
    assert not again.applied and again.already_applied
    assert len(cluster.actions(namespace="shop", name="web", kind="restart")) == 1
    template = deployment(kube)["spec"]["template"]["metadata"]["annotations"]
    assert template["kubectl.kubernetes.io/restartedAt"] == first.after["restartedAt"]
    other = activity_env.env.run(kube.restart_deployment, request("restart_deployment", key="key-2"))
    assert other.applied
    assert len(cluster.actions(namespace="shop", name="web", kind="restart")) == 2


def test_restart_retry_after_another_action_still_skips(cluster: SandboxCluster, kube: KubernetesActivities,
                                                        activity_env: Env) -> None:
    activity_env.env.run(kube.restart_deployment, request("restart_deployment", "restart"))
    activity_env.env.run(kube.scale_deployment, request("scale_deployment", "scale", replicas=4))
    late_retry = activity_env.env.run(kube.restart_deployment, request("restart_deployment", "restart"))
    assert late_retry.already_applied
    assert [a["kind"] for a in cluster.actions(namespace="shop", name="web")] == ["restart", "scale"]


async def test_restart_heals_crashloop(cluster: SandboxCluster, kube: KubernetesActivities, activity_env: Env) -> None:
    cluster.inject("crashloop", namespace="shop", deployment="web")
    wait_until(lambda: not activity_env.env.run(kube.get_rollout_status, FAST).healthy)
    assert "CrashLoopBackOff" in activity_env.env.run(kube.get_rollout_status, FAST).detail
    activity_env.env.run(kube.restart_deployment, request("restart_deployment"))
    status = await activity_env.env.run(kube.wait_for_rollout, FAST)
    assert status.healthy, status.detail
    assert (status.desired, status.available, status.updated) == (3, 3, 3)
    assert cluster.is_healthy("shop", "web")
    assert activity_env.heartbeats


async def test_wait_for_rollout_reports_timeout(cluster: SandboxCluster, kube: KubernetesActivities,
                                          activity_env: Env) -> None:
    cluster.inject("unfixable", namespace="shop", deployment="web")
    check = FAST.model_copy(update={"timeout_seconds": 0.6})
    status = await activity_env.env.run(kube.wait_for_rollout, check)
    assert not status.healthy
    assert "within 0.6s" in status.detail and "CrashLoopBackOff" in status.detail
    assert len(activity_env.heartbeats) >= 3


def test_scale_within_bounds(cluster: SandboxCluster, kube: KubernetesActivities, activity_env: Env) -> None:
    doubled = activity_env.env.run(kube.scale_deployment, request("scale_deployment", "s1", factor=2.0))
    assert (doubled.before, doubled.after) == ({"replicas": 3}, {"replicas": 6})
    clamped = activity_env.env.run(kube.scale_deployment, request("scale_deployment", "s2", replicas=50))
    assert clamped.after == {"replicas": 10}
    error = raises("BoundExceeded", activity_env.env.run, kube.scale_deployment,
                   request("scale_deployment", "s3", factor=2.0))
    assert error.non_retryable and "already at 10" in error.message
    down = activity_env.env.run(kube.scale_deployment, request("scale_deployment", "s4", replicas=1))
    assert down.after == {"replicas": 5}  # at most -50% in one step
    assert [a["kind"] for a in cluster.actions(namespace="shop", name="web")] == ["scale"] * 3
    wait_until(lambda: cluster.is_healthy("shop", "web"))


def test_scale_respects_custom_bounds_and_params(cluster: SandboxCluster, kube: KubernetesActivities,
                                                 activity_env: Env) -> None:
    bounded = request("scale_deployment", delta=5).model_copy(update={"bounds": ActionBounds(max_replicas=4)})
    assert activity_env.env.run(kube.scale_deployment, bounded).after == {"replicas": 4}
    raises("InvalidParams", activity_env.env.run, kube.scale_deployment, request("scale_deployment", "s2"))
    raises("InvalidParams", activity_env.env.run, kube.scale_deployment,
           request("scale_deployment", "s3", factor="lots"))


async def test_raise_memory_twice_heals_oom(cluster: SandboxCluster, kube: KubernetesActivities,
                                            activity_env: Env) -> None:
    cluster.inject("oom", namespace="shop", deployment="web")  # needs 2x the 256Mi limit
    first = activity_env.env.run(kube.raise_memory_limit, request("raise_memory_limit", "m1"))
    assert (first.before, first.after) == ({"memory": "256Mi"}, {"memory": "384Mi"})
    short = FAST.model_copy(update={"timeout_seconds": 0.5})
    assert not (await activity_env.env.run(kube.wait_for_rollout, short)).healthy
    second = activity_env.env.run(kube.raise_memory_limit, request("raise_memory_limit", "m2", container="web"))
    assert second.after == {"memory": "576Mi"}
    assert (await activity_env.env.run(kube.wait_for_rollout, FAST)).healthy
    container = deployment(kube)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "576Mi"
    assert container["image"] == "registry.local/shop/web:1.4.2"  # the rest of the container is untouched
    assert len(cluster.actions(namespace="shop", name="web", kind="memory")) == 2


def test_raise_memory_stops_at_cap(cluster: SandboxCluster, kube: KubernetesActivities, activity_env: Env) -> None:
    capped = request("raise_memory_limit", factor=3.0).model_copy(
        update={"bounds": ActionBounds(memory_cap_bytes=300 * 2**20)})
    assert activity_env.env.run(kube.raise_memory_limit, capped).after == {"memory": "300Mi"}
    again = capped.model_copy(update={"idempotency_key": "key-2"})
    error = raises("BoundExceeded", activity_env.env.run, kube.raise_memory_limit, again)
    assert "cap" in error.message
    raises("InvalidTarget", activity_env.env.run, kube.raise_memory_limit,
           request("raise_memory_limit", "key-3", container="sidecar"))


async def test_rollback_after_bad_deploy(cluster: SandboxCluster, kube: KubernetesActivities,
                                         activity_env: Env) -> None:
    raises("NoPreviousRevision", activity_env.env.run, kube.rollback_deployment, request("rollback_deployment"))
    cluster.inject("bad-deploy", namespace="shop", deployment="web")
    wait_until(lambda: deployment(kube)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    result = activity_env.env.run(kube.rollback_deployment, request("rollback_deployment", "r1"))
    assert result.applied and result.before["revision"] == 2 and result.after["revision_template"] == 1
    assert result.after["image"] == {"web": "registry.local/shop/web:1.4.2"}
    again = activity_env.env.run(kube.rollback_deployment, request("rollback_deployment", "r1"))
    assert again.already_applied
    assert (await activity_env.env.run(kube.wait_for_rollout, FAST)).healthy
    assert [a["kind"] for a in cluster.actions(namespace="shop", name="web")] == ["rollback"]


def _web_pods(kube: KubernetesActivities) -> list[str]:
    listed = kube._call(kube._core.list_namespaced_pod, "shop", label_selector="app=web", what="pods")
    return sorted(p["metadata"]["name"] for p in listed["items"])


def test_evict_respects_disruption_budget(cluster: SandboxCluster, kube: KubernetesActivities,
                                          activity_env: Env) -> None:
    evict = request("evict_pod").model_copy(update={"pod": _web_pods(kube)[0]})
    assert activity_env.env.run(kube.evict_pod, evict).applied
    assert activity_env.env.run(kube.evict_pod, evict).already_applied  # the pod is gone
    # Two ready replicas and a budget of minAvailable 2: the API refuses, and retrying later may succeed.
    activity_env.env.run(kube.scale_deployment, request("scale_deployment", "scale", replicas=2))
    wait_until(lambda: cluster.is_healthy("shop", "web") and len(_web_pods(kube)) == 2)
    refused = raises("PdbViolation", activity_env.env.run, kube.evict_pod,
                     evict.model_copy(update={"pod": _web_pods(kube)[0], "idempotency_key": "key-2"}))
    assert not refused.non_retryable
    assert len(cluster.actions(kind="evict")) == 1
    checkout = kube._call(kube._core.list_namespaced_pod, "shop", label_selector="app=checkout", what="pods")
    foreign = evict.model_copy(update={"pod": checkout["items"][0]["metadata"]["name"], "idempotency_key": "k3"})
    raises("InvalidTarget", activity_env.env.run, kube.evict_pod, foreign)
    raises("InvalidTarget", activity_env.env.run, kube.evict_pod, request("evict_pod"))


LOG_CLEANUP = {"image": "registry.local/ops/log-cleanup:1.0", "args": ["--older-than", "7d", "/var/log/app"],
               "active_deadline": "5m", "labels": {"team": "sre"}}


def test_run_job_clears_disk_pressure(cluster: SandboxCluster, kube: KubernetesActivities, activity_env: Env) -> None:
    cluster.inject("disk-pressure", namespace="shop", deployment="web")
    job = request("run_job", template="log-cleanup").model_copy(update={"job_template": LOG_CLEANUP})
    created = activity_env.env.run(kube.run_job, job)
    assert created.applied and str(created.after["job"]).startswith("log-cleanup-")
    assert activity_env.env.run(kube.run_job, job).already_applied
    wait_until(lambda: not cluster.faults()["active"])
    assert len(cluster.actions(kind="job")) == 1
    manifest = kube._call(kube._batch.read_namespaced_job, created.after["job"], "shop", what="job")
    pod_spec = manifest["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never" and "command" not in pod_spec["containers"][0]
    assert pod_spec["containers"][0]["args"] == LOG_CLEANUP["args"]
    assert manifest["spec"]["activeDeadlineSeconds"] == 300
    assert manifest["metadata"]["labels"] == {"zerotouch.io/job": "log-cleanup", "team": "sre",
                                              "app.kubernetes.io/managed-by": "zerotouch"}
    raises("InvalidParams", activity_env.env.run, kube.run_job, request("run_job", template="log-cleanup"))
    raises("InvalidParams", activity_env.env.run, kube.run_job,
           job.model_copy(update={"params": {"template": "Bad Name"}}))


# "w\u0435b" spells web with a Cyrillic look-alike letter.
BAD_NAMES = ["../etc", "web;rm -rf", "Web", "w" * 300, "w\u0435b", "", "web/../x"]
ACTIONS = ["restart_deployment", "scale_deployment", "rollback_deployment", "raise_memory_limit", "run_job"]


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("action", ACTIONS)
def test_invalid_names_never_reach_the_api(cluster: SandboxCluster, kube: KubernetesActivities,
                                           activity_env: Env, action: str, bad: str) -> None:
    by_name = request(action, name=bad, factor=2.0, template="log-cleanup").model_copy(
        update={"job_template": LOG_CLEANUP})
    by_namespace = by_name.model_copy(update={"name": "web", "namespace": bad})
    for bad_request in (by_name, by_namespace):
        error = raises("InvalidTarget", activity_env.env.run, getattr(kube, action), bad_request)
        assert error.non_retryable
    evict = request("evict_pod").model_copy(update={"pod": bad})
    raises("InvalidTarget", activity_env.env.run, kube.evict_pod, evict)
    rollout = FAST.model_copy(update={"deployment": bad})
    raises("InvalidTarget", activity_env.env.run, kube.get_rollout_status, rollout)
    assert cluster.actions(include_failed=True) == []


def test_unknown_deployment_is_not_found(cluster: SandboxCluster, kube: KubernetesActivities,
                                         activity_env: Env) -> None:
    error = raises("NotFound", activity_env.env.run, kube.restart_deployment,
                   request("restart_deployment", name="nope"))
    assert error.non_retryable


@pytest.mark.parametrize(("status", "method"), [(500, "PATCH"), (503, "GET"), (429, "PATCH")])
def test_api_failures_are_retryable_and_act_once(cluster: SandboxCluster, kube: KubernetesActivities,
                                                 activity_env: Env, status: int, method: str) -> None:
    cluster.fail_requests(status=status, count=1, path_contains="/deployments/web", method=method)
    error = raises({500: "ApiUnavailable", 503: "ApiUnavailable", 429: "TooManyRequests"}[status],
                   activity_env.env.run, kube.restart_deployment, request("restart_deployment"))
    assert not error.non_retryable
    # The retry Temporal would make: the failure is used up, the restart happens once.
    assert activity_env.env.run(kube.restart_deployment, request("restart_deployment")).applied
    assert activity_env.env.run(kube.restart_deployment, request("restart_deployment")).already_applied
    assert len(cluster.actions(namespace="shop", name="web", kind="restart")) == 1


def test_conflict_is_reread_within_the_attempt(cluster: SandboxCluster, kube: KubernetesActivities,
                                               activity_env: Env) -> None:
    cluster.fail_requests(status=409, count=2, path_contains="/deployments/web", method="PATCH")
    assert activity_env.env.run(kube.scale_deployment, request("scale_deployment", replicas=4)).applied
    assert [a["kind"] for a in cluster.actions(namespace="shop", name="web")] == ["scale"]
