# The typed Kubernetes client marks every field Optional; these tests read fields the
# sandbox always sets, so None checks at each access would only add noise.
# mypy: disable-error-code="union-attr,index"
"""Failure rules that apply a write and then stall its answer, and the non-retryable statuses."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sandbox import SandboxCluster

from .conftest import wait_until

WEB = "/apis/apps/v1/namespaces/shop/deployments/web"
SCALE_TO_5 = {"spec": {"replicas": 5}}


def _patch(cluster: SandboxCluster, timeout: float) -> httpx.Response:
    return httpx.patch(f"{cluster.url}{WEB}", json=SCALE_TO_5, timeout=timeout,
                       headers={"Content-Type": "application/strategic-merge-patch+json"})


def test_apply_then_stall_applies_and_logs_the_write_before_answering(cluster: SandboxCluster) -> None:
    cluster.fail_requests(status=None, count=1, path_contains="/deployments/web", method="PATCH",
                          delay_after_seconds=1.5)
    answered = threading.Event()

    def send() -> None:
        _patch(cluster, timeout=10.0)
        answered.set()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        # The write is in the cluster and in the action log while the client still waits.
        [applied] = wait_until(lambda: cluster.actions(namespace="shop", name="web", kind="scale"), timeout=5.0)
        assert applied["ok"] and applied["status"] == 200
        deploy = httpx.get(f"{cluster.url}{WEB}").json()
        assert deploy["spec"]["replicas"] == 5
        assert not answered.is_set(), "the answer is held back after the write"
        wait_until(answered.is_set, timeout=5.0)
    finally:
        sender.join(timeout=10)
    assert cluster.core.failures.describe() == [], "the rule was used up"


def test_a_client_that_gives_up_during_the_stall_still_changed_the_cluster(cluster: SandboxCluster) -> None:
    cluster.fail_requests(status=None, count=1, path_contains="/deployments/web", method="PATCH",
                          delay_after_seconds=1.0)
    with pytest.raises(httpx.TimeoutException):
        _patch(cluster, timeout=0.3)
    assert httpx.get(f"{cluster.url}{WEB}").json()["spec"]["replicas"] == 5
    assert len(cluster.actions(namespace="shop", name="web", kind="scale")) == 1
    # Only the matching request stalls: reads, and the next write, answer at once.
    start = time.monotonic()
    assert _patch(cluster, timeout=5.0).status_code == 200
    assert time.monotonic() - start < 0.9


def test_delay_before_is_unchanged_nothing_applies_until_the_delay_passed(cluster: SandboxCluster) -> None:
    cluster.fail_requests(status=None, count=1, path_contains="/deployments/web", method="PATCH",
                          delay_seconds=1.0)
    with pytest.raises(httpx.TimeoutException):
        _patch(cluster, timeout=0.3)
    assert httpx.get(f"{cluster.url}{WEB}").json()["spec"]["replicas"] == 3, "not yet handled"
    wait_until(lambda: cluster.actions(namespace="shop", name="web", kind="scale"), timeout=5.0)


@pytest.mark.parametrize(("status", "reason"), [(403, "Forbidden"), (404, "NotFound"), (422, "Invalid")])
def test_non_retryable_statuses_answer_like_the_apiserver(
    cluster: SandboxCluster, apps_v1: client.AppsV1Api, status: int, reason: str
) -> None:
    cluster.fail_requests(status=status, count=1, path_contains="/deployments/web", method="PATCH")
    with pytest.raises(ApiException) as refused:
        apps_v1.patch_namespaced_deployment("web", "shop", SCALE_TO_5)
    assert refused.value.status == status
    body = httpx.Response(status, content=refused.value.body).json()
    assert body["kind"] == "Status" and body["reason"] == reason and body["code"] == status
    assert "injected by sandbox" in body["message"]
    assert cluster.actions(namespace="shop", name="web") == [], "nothing applied"
    [failed] = cluster.actions(namespace="shop", name="web", include_failed=True)
    assert failed["status"] == status and not failed["ok"]
    assert apps_v1.read_namespaced_deployment("web", "shop").spec.replicas == 3


def test_rules_that_cannot_be_honoured_are_refused(cluster: SandboxCluster) -> None:
    with pytest.raises(ValueError, match="status 0"):
        cluster.fail_requests(status=500, delay_after_seconds=1.0)
    with pytest.raises(ValueError, match="delay_after_seconds"):
        cluster.fail_requests(status=None, delay_after_seconds=-1.0)
    with pytest.raises(ValueError, match="unsupported"):
        cluster.fail_requests(status=401)
