"""Worker knobs the latency investigation turns (issue #19), for the floor's worker and a tuned zerotouch worker.

Passed to a child process as JSON (``--knobs``); the empty object is the shipped settings.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.worker import PollerBehaviorAutoscaling

# Worker() keyword arguments a knob may set (anything else is a typo in the bench, not a knob).
WORKER_KWARGS = frozenset({
    "max_concurrent_workflow_task_polls", "max_concurrent_activity_task_polls", "nonsticky_to_sticky_poll_ratio",
    "disable_eager_activity_execution", "max_cached_workflows", "max_concurrent_workflow_tasks",
})


@dataclass
class Knobs:
    worker: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None  # the activity thread pool (shipped: max_concurrent_activities)
    uvloop: bool = False
    autoscale_polls: bool = False  # PollerBehaviorAutoscaling for workflow and activity polls

    @classmethod
    def parse(cls, text: str) -> Knobs:
        knobs = cls(**json.loads(text or "{}"))
        unknown = set(knobs.worker) - WORKER_KWARGS
        if unknown:
            raise ValueError(f"unknown worker knobs {sorted(unknown)}; choose from {sorted(WORKER_KWARGS)}")
        return knobs

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    def worker_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.worker)
        if self.autoscale_polls:
            kwargs["workflow_task_poller_behavior"] = PollerBehaviorAutoscaling()
            kwargs["activity_task_poller_behavior"] = PollerBehaviorAutoscaling()
        return kwargs

    def executor(self, default_size: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.threads or default_size)

    def run(self, main: Coroutine[Any, Any, None]) -> None:
        if self.uvloop:
            import uvloop

            uvloop.run(main)
        else:
            asyncio.run(main)

    def patch_zerotouch_worker(self) -> None:
        """Make `workers.run` build its workers with these knobs (the tuned worker's process only)."""
        from temporalio.worker import Worker

        import workers.run as run

        kwargs = self.worker_kwargs()
        if kwargs:
            run.Worker = functools.partial(Worker, **kwargs)  # type: ignore[misc,assignment]
        if self.threads:
            run.ThreadPoolExecutor = functools.partial(ThreadPoolExecutor, max_workers=self.threads)  # type: ignore[misc,assignment]
        if self.uvloop:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.worker.items()]
        parts += [f"threads={self.threads}"] if self.threads else []
        parts += ["uvloop"] if self.uvloop else []
        parts += ["autoscaling pollers"] if self.autoscale_polls else []
        return ", ".join(parts) or "shipped settings"
