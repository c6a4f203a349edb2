"""Scenario 11's setting: the bench policy with a `recovery` section, and every worker in this process.

The recoveries run on in-process workers (as the tests run them), not a `zerotouch worker` process:
each run has a cluster of its own (its own task queues), and the database run's workers must see the
DSN variables this process sets for that cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml
from temporalio.client import Client

from bench.policy import bench_policy
from workers.run import build_workers
from zerotouch.names import ALL_QUEUES
from zerotouch.policy import load_policy
from zerotouch.settings import WorkerSettings


def recovery_policy(target: Path, recovery: dict[str, Any]) -> Path:
    """The bench policy with `recovery` as its recovery section; validated before use."""
    document: dict[str, Any] = yaml.safe_load(bench_policy(target).read_text())
    document.setdefault("recovery", {}).update(recovery)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(target)
    return target


@contextlib.asynccontextmanager
async def in_process_workers(client: Client, cluster: str, *, kubernetes_url: str, policy: Path,
                             ledger_url: str) -> AsyncIterator[None]:
    """Every task queue's worker for `cluster`, running until the block ends."""
    settings = WorkerSettings(kubernetes_url=kubernetes_url, ledger_url=ledger_url, policy_path=str(policy))
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10.0) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, ALL_QUEUES, settings, http=http, executor=executor, cluster=cluster):
                await stack.enter_async_context(worker)
            yield
