"""Schedules on the real dev server (the time-skipping server has no schedules), Jobs on a real sandbox.

Each test gets its own cluster scope: its own task queues, schedule IDs and managed set, so tests
sharing the session's dev server never see (or delete) each other's schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import yaml
from kubernetes import client as k8s
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.kubernetes import KubernetesActivities
from activities.policy import PolicyActivities
from sandbox import SandboxCluster
from workers.run import workflow_runner
from workflows.scheduled_job import ScheduledJobWorkflow
from zerotouch.names import KUBERNETES_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy, load_policy
from zerotouch.schedules import ScheduleDeclaration, schedule_id

T = TypeVar("T")
TICK = 0.05
SLOW = 3600.0  # a sandbox whose Jobs never finish during a test


def write_policy(path: Path, schedules: list[dict[str, Any]] | None = None) -> Path:
    """A small policy with a job template and the given schedule declarations."""
    path.write_text(yaml.safe_dump({
        "version": 1,
        "job_templates": {"log-cleanup": {"image": "busybox:1.36.1", "args": ["true"], "active_deadline": "1m"}},
        "schedules": schedules or [],
    }))
    return path


def declaration(name: str, **fields: Any) -> ScheduleDeclaration:
    data: dict[str, Any] = {"name": name, "workflow": "ScheduledJobWorkflow",
                            "arguments": {"template": "log-cleanup", "namespace": "shop", "poll": "100ms"},
                            "interval": "10m", "paused": True}
    data.update(fields)
    return ScheduleDeclaration.model_validate(data)


@dataclass
class Stack:
    """A dev-server client, a cluster scope with running workers, a sandbox and its Jobs."""

    client: Client
    cluster: str
    sandbox: SandboxCluster
    batch: k8s.BatchV1Api
    policy_path: Path

    def policy(self) -> Policy:
        return load_policy(self.policy_path)

    def jobs(self, namespace: str = "shop") -> list[dict[str, Any]]:
        """The Jobs scheduled runs made (this test's own sandbox: no other test's)."""
        listed = self.batch.list_namespaced_job(namespace, label_selector="zerotouch.io/schedule",
                                                _preload_content=False)
        items: list[dict[str, Any]] = json.loads(listed.data)["items"]  # type: ignore[attr-defined]
        return items


@pytest.fixture
def scope() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _sandbox(tick: float) -> Iterator[SandboxCluster]:
    cluster = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=tick).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fast_sandbox() -> Iterator[SandboxCluster]:
    yield from _sandbox(TICK)


@pytest.fixture
def slow_sandbox() -> Iterator[SandboxCluster]:
    yield from _sandbox(SLOW)


async def _stack(env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str,
                 policy_path: Path) -> AsyncIterator[Stack]:
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    api = k8s.ApiClient(configuration)
    executor = ThreadPoolExecutor(max_workers=8)
    kube = KubernetesActivities(api_client=api)
    workers = [
        Worker(env.client, task_queue=queue_for(WORKFLOWS_QUEUE, cluster), workflows=[ScheduledJobWorkflow],
               workflow_runner=workflow_runner()),
        Worker(env.client, task_queue=queue_for(KUBERNETES_QUEUE, cluster), activity_executor=executor,
               activities=[kube.create_scheduled_job, kube.wait_for_job]),
        Worker(env.client, task_queue=queue_for(OBSERVE_QUEUE, cluster), activity_executor=executor,
               activities=[PolicyActivities(default_path=str(policy_path)).load_policy]),
    ]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield Stack(env.client, cluster, sandbox, k8s.BatchV1Api(api), policy_path)
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)
        api.close()


@pytest_asyncio.fixture
async def stack(dev_env: WorkflowEnvironment, fast_sandbox: SandboxCluster, scope: str,
                tmp_path: Path) -> AsyncIterator[Stack]:
    async for value in _stack(dev_env, fast_sandbox, scope, write_policy(tmp_path / "policy.yaml")):
        yield value


@pytest_asyncio.fixture
async def slow_stack(dev_env: WorkflowEnvironment, slow_sandbox: SandboxCluster, scope: str,
                     tmp_path: Path) -> AsyncIterator[Stack]:
    async for value in _stack(dev_env, slow_sandbox, scope, write_policy(tmp_path / "policy.yaml")):
        yield value


@pytest_asyncio.fixture
async def made(dev_env: WorkflowEnvironment, scope: str) -> AsyncIterator[list[str]]:
    """Names of the schedules a test declares: deleted afterwards, so none keeps firing on the shared server."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(RPCError):  # already gone (the test deleted it)
            await dev_env.client.get_schedule_handle(schedule_id(name, scope)).delete()
