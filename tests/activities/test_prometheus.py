"""PromQL checks against a real Prometheus scraping the sandbox cluster every second."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.prometheus import SKIPPED, PrometheusActivities
from zerotouch.models import PromQLCheck
from zerotouch.ports import free_port

from .conftest import Env, PrometheusServer

CRASHLOOP = 'kube_pod_container_status_waiting_reason{namespace="shop",reason="CrashLoopBackOff"} > 0'


async def test_crashloop_expression_holds(prometheus: PrometheusServer, activity_env: Env) -> None:
    prometheus.cluster.inject("crashloop", namespace="shop", deployment="checkout")
    check = PromQLCheck(expression=CRASHLOOP, hold_for_seconds=1.0, timeout_seconds=30, poll_seconds=0.5)
    result = await activity_env.env.run(PrometheusActivities(url=prometheus.url).wait_for_promql, check)
    assert result.holds, result.detail
    assert result.samples == 2  # both checkout pods
    assert "held for" in result.detail
    assert activity_env.heartbeats


async def test_expression_that_never_holds_times_out(prometheus: PrometheusServer, activity_env: Env) -> None:
    never = PromQLCheck(expression='up{job="sandbox"} > 1', hold_for_seconds=1, timeout_seconds=1.5,
                        poll_seconds=0.3)
    result = await activity_env.env.run(PrometheusActivities(url=prometheus.url).wait_for_promql, never)
    assert not result.holds and "within 1.5s" in result.detail
    assert len(activity_env.heartbeats) >= 3


def test_single_query(prometheus: PrometheusServer, activity_env: Env) -> None:
    activities = PrometheusActivities(url=prometheus.url)
    assert activity_env.env.run(activities.query_promql, PromQLCheck(expression="vector(1)")).holds
    empty = activity_env.env.run(activities.query_promql, PromQLCheck(expression='up{job="nope"}'))
    assert not empty.holds and empty.samples == 0


@pytest.mark.parametrize("expression", ["sum(", "", "rate(up[1m]"])
async def test_bad_expression_is_not_retried(prometheus: PrometheusServer, activity_env: Env, expression: str) -> None:
    activities = PrometheusActivities(url=prometheus.url)
    check = PromQLCheck(expression=expression, timeout_seconds=5)
    with pytest.raises(ApplicationError) as once:
        activity_env.env.run(activities.query_promql, check)
    with pytest.raises(ApplicationError) as waited:
        await activity_env.env.run(activities.wait_for_promql, check)
    for caught in (once, waited):
        assert caught.value.type == "InvalidQuery" and caught.value.non_retryable


async def test_unreachable_prometheus(activity_env: Env) -> None:
    activities = PrometheusActivities(url=f"http://127.0.0.1:{free_port()}")
    waited = await activity_env.env.run(activities.wait_for_promql,
                                        PromQLCheck(expression="vector(1)", timeout_seconds=0.5, poll_seconds=0.2))
    assert not waited.holds and "unreachable" in waited.detail
    with pytest.raises(Exception) as caught:  # any exception type: Temporal retries it
        activity_env.env.run(activities.query_promql, PromQLCheck(expression="vector(1)"))
    assert not isinstance(caught.value, ApplicationError) or not caught.value.non_retryable


async def test_without_prometheus_the_check_is_skipped_and_says_so(activity_env: Env) -> None:
    activities = PrometheusActivities(url=None)
    once = activity_env.env.run(activities.query_promql, PromQLCheck(expression=CRASHLOOP))
    waited = await activity_env.env.run(activities.wait_for_promql, PromQLCheck(expression=CRASHLOOP))
    for result in (once, waited):
        assert result.holds and result.detail == SKIPPED
