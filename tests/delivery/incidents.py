"""What Temporal holds: incident executions per workflow ID, and the alerts each one received."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.models import IncidentStatus
from zerotouch.names import INCIDENT_WORKFLOW, SIGNAL_ALERT_FIRED
from zerotouch.policy import Policy

GROUP_BY = Policy().group_by
# Alertmanager's route: it groups by labels the alerts carry (the relay's `workload` is derived, so
# Alertmanager cannot group by it); one group per incident, as these tests count flushes per group.
ALERTMANAGER_GROUP_BY = ["alertname", "namespace", "deployment"]


def incident_id(alert: dict[str, Any], group_by: list[str] = GROUP_BY) -> str:
    """The incident an Alertmanager alert must land in (the relay's own rule)."""
    event = AlertEvent(fingerprint="", status="firing", labels=alert["labels"], starts_at=datetime.now(UTC))
    return incident_id_for(event, group_by)


async def executions(client: Client) -> Counter[str]:
    """Incident workflow ID → how many executions (runs) Temporal has of it, open or closed."""
    runs: Counter[str] = Counter()
    async for execution in client.list_workflows(f'WorkflowType="{INCIDENT_WORKFLOW}"'):
        runs[execution.id] += 1
    return runs


async def wait_for_incidents(client: Client, expected: set[str], *, timeout: float) -> Counter[str]:
    """Poll visibility until every expected incident exists; return the executions seen last."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        runs = await executions(client)
        if expected <= runs.keys() or asyncio.get_running_loop().time() > deadline:
            return runs
        await asyncio.sleep(0.25)


async def fired_signals(client: Client, workflow_ids: set[str]) -> dict[str, list[AlertEvent]]:
    """Workflow ID → every ``alert_fired`` event in its history (the start signal included)."""
    converter = client.data_converter.payload_converter
    limit = asyncio.Semaphore(16)

    async def one(workflow_id: str) -> tuple[str, list[AlertEvent]]:
        async with limit:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        fired = []
        for event in history.events:
            if event.HasField("workflow_execution_signaled_event_attributes"):
                attributes = event.workflow_execution_signaled_event_attributes
                if attributes.signal_name == SIGNAL_ALERT_FIRED:
                    fired += converter.from_payloads(attributes.input.payloads, [AlertEvent])
        return workflow_id, fired

    return dict(await asyncio.gather(*(one(workflow_id) for workflow_id in sorted(workflow_ids))))


async def final_states(client: Client, *, timeout: float) -> dict[tuple[str, str], str]:
    """(workflow ID, run ID) → the incident's final state, waiting for every execution to close.

    A run that failed, was terminated or is still open after ``timeout`` raises.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        open_runs = [execution.id async for execution in client.list_workflows(
            f'WorkflowType="{INCIDENT_WORKFLOW}" AND ExecutionStatus="Running"')]
        if not open_runs:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(open_runs)} incidents still open after {timeout}s, e.g. {open_runs[:5]}")
        await asyncio.sleep(0.5)
    runs = [(execution.id, execution.run_id) async for execution in client.list_workflows(
        f'WorkflowType="{INCIDENT_WORKFLOW}"')]
    limit = asyncio.Semaphore(16)

    async def one(workflow_id: str, run_id: str | None) -> tuple[tuple[str, str], str]:
        async with limit:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=IncidentStatus)
            return (workflow_id, run_id or ""), (await handle.result()).state

    return dict(await asyncio.gather(*(one(workflow_id, run_id) for workflow_id, run_id in runs)))


def assert_one_incident_per_alert(runs: Counter[str], expected: set[str], signals: dict[str, list[AlertEvent]],
                                  labels_by_incident: dict[str, dict[str, str]]) -> None:
    """Every expected incident exists exactly once, none other, and each got only its own alert's labels."""
    missing = expected - runs.keys()
    assert not missing, f"{len(missing)} of {len(expected)} alerts have no incident, e.g. {sorted(missing)[:5]}"
    assert runs.keys() == expected, f"incidents nobody alerted for: {sorted(runs.keys() - expected)[:5]}"
    duplicated = {workflow_id: count for workflow_id, count in runs.items() if count != 1}
    assert not duplicated, f"incidents started more than once: {duplicated}"
    for workflow_id, fired in signals.items():
        assert fired and all(event.labels == labels_by_incident[workflow_id] for event in fired), (workflow_id, fired)
