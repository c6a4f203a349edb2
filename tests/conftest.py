"""Shared fixtures: real Temporal servers started from the pip-installed binaries."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from zerotouch.binaries import temporal_cli, temporal_test_server
from zerotouch.names import SEARCH_ATTRIBUTES
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (in-memory), with zerotouch's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(),
        port=free_port(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@contextlib.asynccontextmanager
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of its own, with zerotouch's search attributes, stopped even on failure."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        data_converter=data_converter(),
        port=free_port(),
    )
    try:
        # The test server starts without custom search attributes; the dev server gets them by flag.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
                },
            )
        )
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: timers of hours fire in seconds.

    One per test module, not per session: the server skips time only while nothing is in flight,
    so a workflow task one module leaves behind would make every later module's sleeps wait in
    real time. Tests that sleep many times on it (the Governor storms) start their own.
    """
    async with time_skipping_env() as env:
        yield env


@pytest.fixture
def sandbox() -> Iterator[SandboxCluster]:
    """A sandbox Kubernetes API with the demo workloads, on a free port, stopped even on failure."""
    cluster = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.05)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test so workers of one test never steal another's tasks."""
    return f"tq-{uuid.uuid4().hex[:12]}"
