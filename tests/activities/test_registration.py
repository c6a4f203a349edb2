"""Every activity registers on a real Temporal worker under the name workflows call it by."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import (
    KubernetesActivities,
    NotifyActivities,
    PolicyActivities,
    PostgresActivities,
    PrometheusActivities,
)

EXPECTED = {
    "restart_deployment", "scale_deployment", "rollback_deployment", "raise_memory_limit", "evict_pod", "run_job",
    "get_rollout_status", "get_cluster_usage", "wait_for_rollout", "terminate_idle_connections", "get_connection_usage",
    "wait_for_promql", "query_promql", "send_notification", "load_policy",
}


def _activities(instance: object) -> list[Callable[..., Any]]:
    return [getattr(instance, name) for name in dir(type(instance))
            if activity._Definition.from_callable(getattr(type(instance), name)) is not None]


async def test_all_activities_register(time_env: WorkflowEnvironment, task_queue: str) -> None:
    api = client.ApiClient(client.Configuration())
    instances = [KubernetesActivities(api_client=api), PostgresActivities(dsn_for=lambda ref: ""),
                 PrometheusActivities(url=None), NotifyActivities(), PolicyActivities(default_path=None)]
    methods = [method for instance in instances for method in _activities(instance)]
    try:
        assert {activity._Definition.must_from_callable(method).name for method in methods} == EXPECTED
        # Worker construction validates the definitions (sync ones need the executor).
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with Worker(time_env.client, task_queue=task_queue, activities=methods, activity_executor=executor):
                pass
    finally:
        api.close()
