"""Helpers to run zerotouch's real workers against a test server and a sandbox cluster."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from workers.run import build_workers
from workflows.incident import IncidentWorkflow
from zerotouch.alerts import AlertEvent, fingerprint_of
from zerotouch.models import IncidentInput, IncidentStatus
from zerotouch.names import ALL_QUEUES, SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy
from zerotouch.settings import WorkerSettings


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, cluster: str, *, kubernetes_url: str | None, prometheus_url: str | None = None,
    policy_path: str | None = None, ledger_url: str | None = None, policy: Policy | None = None,
) -> AsyncIterator[None]:
    """All of zerotouch's workers for `cluster`; `policy` (or the file at `policy_path`) is the workers' policy.

    The Governor takes its limits only from the workers' policy, so a test whose incidents pin a
    policy with other guardrails passes that policy here too.
    """
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        if policy is not None:
            policy_path = f"{scratch}/policy.yaml"  # JSON is YAML
            Path(policy_path).write_text(json.dumps(policy.model_dump(mode="json", by_alias=True)))
        async with _workers(client, cluster, kubernetes_url=kubernetes_url, prometheus_url=prometheus_url,
                            policy_path=policy_path, ledger_url=ledger_url or f"sqlite:///{scratch}/ledger.db"):
            yield


@contextlib.asynccontextmanager
async def _workers(
    client: Client, cluster: str, *, kubernetes_url: str | None, prometheus_url: str | None,
    policy_path: str | None, ledger_url: str,
) -> AsyncIterator[None]:
    settings = WorkerSettings(kubernetes_url=kubernetes_url, prometheus_url=prometheus_url, ledger_url=ledger_url)
    if policy_path:
        settings.policy_path = policy_path
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10.0) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, ALL_QUEUES, settings, http=http, executor=executor, cluster=cluster):
                await stack.enter_async_context(worker)
            yield


def alert(alertname: str, status: str = "firing", **labels: str) -> AlertEvent:
    all_labels = {"alertname": alertname, **labels}
    return AlertEvent(
        fingerprint=fingerprint_of(all_labels), status=status,  # type: ignore[arg-type]
        labels=all_labels, starts_at=datetime.now(UTC),
    )


async def open_incident(
    client: Client, cluster: str, event: AlertEvent, policy: Policy | None = None, incident_id: str | None = None
) -> WorkflowHandle[Any, IncidentStatus]:
    from temporalio.common import WorkflowIDConflictPolicy

    incident_id = incident_id or f"incident-test-{uuid.uuid4().hex[:10]}"
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(incident_id=incident_id, policy=policy, cluster=cluster),
        id=incident_id,
        task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=SIGNAL_ALERT_FIRED if event.status == "firing" else SIGNAL_ALERT_RESOLVED,
        start_signal_args=[event],
    )


async def wait_for(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[IncidentStatus], bool], timeout: float = 30.0
) -> IncidentStatus:
    """Poll the status query until ``predicate`` holds (real time; no time skipping while polling)."""
    deadline = asyncio.get_running_loop().time() + timeout
    status: IncidentStatus | None = None
    while asyncio.get_running_loop().time() < deadline:
        status = await handle.query(IncidentWorkflow.status)
        if predicate(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout}s; last status: {status and status.model_dump_json(indent=1)}")


HISTORIES = __import__("pathlib").Path(__file__).resolve().parent.parent / "workflows" / "histories"


async def replay_and_record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Replay the finished history against today's code; with ZEROTOUCH_RECORD_HISTORIES=1 keep it as golden."""
    import os

    from temporalio.worker import Replayer

    from zerotouch.temporal import data_converter

    history = await handle.fetch_history()
    await Replayer(workflows=[IncidentWorkflow], data_converter=data_converter()).replay_workflow(history)
    if os.environ.get("ZEROTOUCH_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())


async def until_closed(handle: WorkflowHandle[Any, Any], timeout: float = 30.0) -> None:
    """Wait for a workflow to finish without `result()`, which would let the test server skip time.

    The time-skipping server is shared by the session: skipping would also fire other tests'
    timers and age this test's Governor state (breaker windows, cooldowns).
    """
    from temporalio.client import WorkflowExecutionStatus

    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} still running after {timeout}s")
