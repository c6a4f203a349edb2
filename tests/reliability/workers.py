"""zerotouch's real workers run inside the test process, for the queues a test does not kill."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.kubernetes import KubernetesActivities
from workers.clients import kubernetes_api_client
from workers.run import build_workers
from zerotouch.names import KUBERNETES_QUEUE, KUBERNETES_WAITS_QUEUE, queue_for
from zerotouch.settings import WorkerSettings


def _activities(instance: object) -> list[Callable[..., Any]]:
    return [getattr(instance, name) for name in dir(type(instance))
            if hasattr(getattr(type(instance), name), "__temporal_activity_definition")]


@contextlib.asynccontextmanager
async def in_process_workers(
    client: Client, cluster: str, *, queues: Sequence[str], kubernetes_url: str | None, ledger_url: str,
    kubernetes_timeout: tuple[float, float] | None = None,
) -> AsyncIterator[None]:
    """The workers of `queues`; the Kubernetes one with `kubernetes_timeout` (connect, read) if given.

    A short read timeout lets a test hold an answer back longer than the client waits without
    waiting out the production 30 s; the activities are the same code either way.
    """
    settings = WorkerSettings(kubernetes_url=kubernetes_url, ledger_url=ledger_url)
    custom = kubernetes_timeout is not None and KUBERNETES_QUEUE in queues
    built = [q for q in queues if not (custom and q == KUBERNETES_QUEUE)]
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10.0) as http, contextlib.AsyncExitStack() as stack:
            workers = build_workers(client, built, settings, http=http, executor=executor, cluster=cluster)
            if custom:
                assert kubernetes_timeout is not None
                kubernetes = KubernetesActivities(api_client=kubernetes_api_client(settings),
                                                  request_timeout=kubernetes_timeout)
                workers.append(Worker(
                    client, task_queue=queue_for(KUBERNETES_QUEUE, cluster), activities=_activities(kubernetes),
                    activity_executor=executor, max_concurrent_activities=settings.max_concurrent_activities,
                ))
                workers.append(Worker(  # the rollout waits' own queue, as build_workers serves it
                    client, task_queue=queue_for(KUBERNETES_WAITS_QUEUE, cluster),
                    activities=[kubernetes.wait_for_rollout], max_concurrent_activities=settings.max_concurrent_waits,
                ))
            for worker in workers:
                await stack.enter_async_context(worker)
            yield
