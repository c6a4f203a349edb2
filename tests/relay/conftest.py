"""Relay fixtures: the relay served over real HTTP in the test's event loop, against the dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer

TOKEN = "test-relay-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STARTS_AT = "2024-05-01T10:00:00Z"


def alert(alertname: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, **labels},
        "annotations": {"summary": f"{alertname} test"},
        "startsAt": STARTS_AT,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2024-05-01T10:05:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "",
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="test"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "zerotouch",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        # None behind these tests: a URL here would keep incidents open, waiting to confirm (issue 18).
        "externalURL": "",
        "alerts": list(alerts),
    }


def unique_alertname() -> str:
    return f"RelayTest{uuid.uuid4().hex[:10]}"



@asynccontextmanager
async def running_relay(client: Client, **overrides: Any) -> AsyncIterator[tuple[RelayServer, httpx.AsyncClient]]:
    """A relay on a free port plus an HTTP client for it; both stopped whatever happens."""
    config = RelayConfig(**{"host": "127.0.0.1", "port": 0, "token": TOKEN, **overrides})
    server = RelayServer(config, client)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield server, http
    finally:
        await server.stop()


@pytest.fixture
def relay(dev_env: WorkflowEnvironment, task_queue: str) -> Callable[..., Any]:
    """``async with relay(**config_overrides) as (server, http)``: on this test's task queue."""

    def start(**overrides: Any) -> Any:
        return running_relay(dev_env.client, **{"task_queue": task_queue, **overrides})

    return start


async def eventually(probe: Callable[[], Awaitable[Any]], expected: Any, *, timeout: float = 10.0) -> Any:
    """Poll until ``probe()`` returns ``expected`` (visibility lags), then return it; else the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = await probe()
    while value != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        value = await probe()
    return value


async def count_incidents(client: Client, task_queue: str) -> int:
    count = await client.count_workflows(f'WorkflowType="IncidentWorkflow" AND TaskQueue="{task_queue}"')
    return count.count


async def signals_of(client: Client, workflow_id: str) -> list[str]:
    """The names of the signals a workflow received, in order (its start signal included)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events: list[HistoryEvent] = list(history.events)
    return [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
