"""The floor zerotouch's alert → first action latency is judged against (issue #19).

A bare workflow (`bench.floor_workflow`) started by signal-with-start on the same dev server, its one
activity zerotouch's own restart (the same read and PATCH to the sandbox), served by a worker process
built with zerotouch's worker settings (`bench.floor_worker`). Sampled interleaved with zerotouch's own
samples, so both see the same machine, load and server; their ratio is what the report judges.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.floor_workflow import FLOOR_ACTIVITY_QUEUE, FLOOR_SIGNAL, FLOOR_WORKFLOW, FLOOR_WORKFLOW_QUEUE, FloorInput
from bench.procs import Child
from bench.stack import CHILD_ENV, Stack
from bench.stats import percentile
from bench.worker_knobs import Knobs

FLOOR_TARGET = "floor"  # the floor's deployment, next to zerotouch's in each sample's namespace
GOAL_RATIO = 2.0
REPO = Path(__file__).resolve().parent.parent.parent


def start_floor_worker(stack: Stack, *, knobs: Knobs | None = None, same_queue: bool = False,
                       name: str = "floor-worker") -> Child:
    """The floor's worker as a child of the stack (stopped with it)."""
    command = [sys.executable, "-m", "bench.floor_worker", "--address", stack.client.service_client.config.target_host,
               "--kubernetes-url", stack.sandbox_url, "--knobs", (knobs or Knobs()).dumps()]
    # bench/ is not an installed package: the child, started in the scratch directory, finds it here.
    env = {**CHILD_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = Child(name, [*command, *(["--same-queue"] if same_queue else [])], stack.workdir, env)
    stack.children.append(child)
    return child


async def floor_sample(stack: Stack, namespace: str, *, same_queue: bool = False, timeout: float = 60.0) -> float:
    """Seconds from just before signal-with-start until the sandbox received the floor's PATCH."""
    queue = FLOOR_WORKFLOW_QUEUE if same_queue else FLOOR_ACTIVITY_QUEUE
    sent = time.time()
    await stack.client.start_workflow(
        FLOOR_WORKFLOW, FloorInput(namespace=namespace, name=FLOOR_TARGET, activity_queue=queue),
        id=floor_workflow_id(namespace, same_queue=same_queue), task_queue=FLOOR_WORKFLOW_QUEUE,
        start_signal=FLOOR_SIGNAL, start_signal_args=["fired"])
    action = await stack.wait_action(namespace, FLOOR_TARGET, timeout=timeout)
    return float(action["timestamp"]) - sent


def floor_workflow_id(namespace: str, *, same_queue: bool = False) -> str:
    return f"bench-floor-{namespace}" + ("-same-queue" if same_queue else "")


def ratio(ours: Sequence[float], floor: Sequence[float], p: float) -> float:
    mine, least = percentile(ours, p), percentile(floor, p)
    return mine / least if least and not math.isnan(least) else math.nan


def times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}x"
