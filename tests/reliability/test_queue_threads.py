"""Each task queue's blocking activities run on threads of its own (workers/run.py `run_workers`)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

import pytest

from workers import run
from zerotouch.names import ALL_QUEUES
from zerotouch.settings import WorkerSettings


async def test_every_queue_gets_its_own_thread_pool_of_the_configured_size(monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, Executor] = {}

    def capture(_client: Any, queues: list[str], _settings: WorkerSettings, *, executor: Executor,
                **_: Any) -> list[Any]:
        (queue,) = queues  # one queue per call: its own executor
        given[queue] = executor
        return []

    monkeypatch.setattr(run, "build_workers", capture)
    stop = asyncio.Event()
    stop.set()
    await run.run_workers(object(), ALL_QUEUES, WorkerSettings(max_concurrent_activities=3), stop)  # type: ignore[arg-type]
    assert list(given) == list(ALL_QUEUES)
    assert len({id(executor) for executor in given.values()}) == len(ALL_QUEUES)
    assert all(getattr(executor, "_max_workers", None) == 3 for executor in given.values())
