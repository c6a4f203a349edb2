"""The storm of scenario 3 sent to a running stack, and what it made the stack do (scenarios 3 and 3b)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.client import Client

from bench.alerts import RESTART_ALERT, incident_id, labels_for, webhook
from bench.procs import Child, cpu_seconds, rss_mib
from bench.stack import Stack
from workflows.incident import IncidentWorkflow
from zerotouch.names import INCIDENT_WORKFLOW

CONCURRENCY = 64
TARGET_COOLDOWN_SECONDS = 300.0  # the shipped guardrails.target_cooldown, kept in the bench policy
NAMESPACES = 10
WARM_UP_INCIDENTS = 2


def deliveries_for(labels: dict[str, str], per_alert: int, rng: random.Random) -> list[list[bytes]]:
    """One alert's deliveries in order; an inner list of two is a duplicate receiver (sent at once).

    First and last are firing; in between, repeats, duplicate pairs and flaps (resolved, then firing again).
    """
    firing, resolved = webhook(labels), webhook(labels, status="resolved")
    steps: list[list[bytes]] = [[firing]]
    remaining = per_alert - 2
    while remaining > 0:
        kind = rng.choice(("repeat", "repeat", "duplicate", "flap"))
        if kind in ("duplicate", "flap") and remaining >= 2:
            steps.append([firing, firing] if kind == "duplicate" else [resolved])
            if kind == "flap":
                steps.append([firing])
            remaining -= 2
        else:
            steps.append([firing])
            remaining -= 1
    steps.append([firing])
    return steps


@dataclass
class StormPlan:
    """Scenario 3's storm: the same seed, so every run and every shape receives the same deliveries."""

    alerts: int
    per_alert: int
    targets: list[tuple[str, str]] = field(init=False)
    labels: list[dict[str, str]] = field(init=False)
    streams: list[list[list[bytes]]] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(5)  # noqa: S311 - a reproducible mix, not a secret
        self.targets = [(f"storm-{i % NAMESPACES}", f"s{i}") for i in range(self.alerts)]
        self.labels = [labels_for(RESTART_ALERT, ns, name) for ns, name in self.targets]
        self.streams = [deliveries_for(one, self.per_alert, rng) for one in self.labels]

    @classmethod
    def sized(cls, *, quick: bool) -> StormPlan:
        return cls(*((20, 10) if quick else (500, 20)))

    @property
    def deliveries(self) -> int:
        return sum(len(step) for steps in self.streams for step in steps)

    @property
    def ids(self) -> list[str]:
        return [incident_id(one) for one in self.labels]

    async def create_targets(self, stack: Stack) -> None:
        for ns in sorted({ns for ns, _ in self.targets}):
            await stack.create_deployments(ns, [name for n, name in self.targets if n == ns])


@dataclass
class StormResult:
    counts: dict[str, int]
    ingest_seconds: float
    drain_seconds: float
    drained: bool
    actions: list[dict[str, Any]]
    incidents: int
    found: int
    received: int
    absorbed: int  # deliveries the relay answered as exact repeats without a signal (starters/relay/repeats.py)
    to_action: list[float]
    # per alert: its first delivery answered 200 → the sandbox received its restart. Detection → action
    # starts at the incident's first workflow task, which in a storm can wait in the task queue for tens
    # of seconds after the relay started the workflow; this one includes that wait.
    alert_to_action: list[float]
    idle: dict[str, float]  # RSS MiB per process before the storm
    peak: dict[str, float]  # RSS MiB per process, peak during the storm
    cpu: dict[str, float]  # CPU seconds per process from the first delivery to the drain
    machine_cpu: float  # CPU seconds every process on the machine used meanwhile (/proc/stat)
    update_limit: int
    grant_failures: int  # request_grant attempts that failed (and were retried), from the worker logs

    def none_lost(self, plan: StormPlan) -> bool:
        """One incident per alert, each answering, and every delivery counted: by its incident, or by the
        relay as a repeat of what that incident was already told."""
        return (self.incidents == plan.alerts and self.found == plan.alerts
                and self.received + self.absorbed == plan.deliveries)

    @property
    def by_target(self) -> dict[tuple[str, str], list[float]]:
        return _by_target(self.actions)

    @property
    def too_close(self) -> int:
        """Pairs of actions on one target inside its cooldown."""
        return sum(1 for stamps in self.by_target.values()
                   for a, b in zip(sorted(stamps), sorted(stamps)[1:], strict=False) if b - a < TARGET_COOLDOWN_SECONDS)


def _by_target(actions: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """Unix times of the actions on each (namespace, name), as the sandbox recorded them."""
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    for action in actions:
        found[(action["namespace"], action["name"])].append(float(action["timestamp"]))
    return found


async def _relay_absorbed(stack: Stack) -> int:
    """The relay's count of repeats it answered without a signal (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{stack.relay_url}/metrics") as response:
        text = await response.text()
    return int(sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("zerotouch_relay_alerts_absorbed_total")))


def watched(stack: Stack) -> list[Child]:
    """The processes whose memory and CPU a storm reports: every worker process, not only the first."""
    return [child for child in (stack.relay, *stack.workers, stack.temporal, stack.sandbox) if child is not None]


class Sampler:
    """Peak RSS of the watched processes while a storm runs."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak: dict[str, float] = defaultdict(float)
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            for child in watched(self.stack):
                if child.alive():
                    self.peak[child.name] = max(self.peak[child.name], rss_mib(child.pid))
            await asyncio.sleep(0.25)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def measure(stack: Stack, plan: StormPlan, *, timeout: float) -> StormResult:
    """Send the storm once its targets exist, wait for every first action, and count what happened."""
    await asyncio.sleep(3.0)
    idle = {child.name: rss_mib(child.pid) for child in watched(stack)}
    cpu_before = {child.name: cpu_seconds(child.pid) for child in watched(stack)}
    machine_before = _machine_busy_seconds()
    sampler = Sampler(stack)
    sampler.start()
    started = time.monotonic()
    counts, first_answered = await _send(stack, plan.streams)
    ingested = time.monotonic() - started
    drained = await _wait_actions(stack, plan.alerts, timeout=timeout)
    drain_seconds = time.monotonic() - started
    await sampler.stop()
    cpu = {child.name: cpu_seconds(child.pid) - cpu_before[child.name] for child in watched(stack) if child.alive()}
    machine_cpu = _machine_busy_seconds() - machine_before
    await asyncio.sleep(5.0)  # anything acting twice would show up by now
    actions = [a for a in await stack.actions(kind="restart") if str(a.get("namespace", "")).startswith("storm-")]
    count = (await stack.client.count_workflows(f"WorkflowType = '{INCIDENT_WORKFLOW}'")).count
    found, received, to_action = await _alerts_received(stack.client, plan.ids)
    absorbed = await _relay_absorbed(stack)
    acted_at = {target: min(stamps) for target, stamps in _by_target(actions).items()}
    alert_to_action = [acted_at[target] - first_answered[i] for i, target in enumerate(plan.targets)
                       if target in acted_at and i in first_answered]
    logs = [worker.log_path.read_text(errors="replace") for worker in stack.workers]
    update_limit = sum(log.count("limit on number of concurrent in-flight updates") for log in logs)
    grant_failures = sum(1 for log in logs for line in log.splitlines()
                         if line.startswith("Completing activity as failed") and "'request_grant'" in line)
    return StormResult(counts=dict(counts), ingest_seconds=ingested, drain_seconds=drain_seconds, drained=drained,
                       actions=actions, incidents=count - WARM_UP_INCIDENTS, found=found, received=received,
                       absorbed=absorbed, to_action=to_action, alert_to_action=alert_to_action, idle=idle,
                       peak=dict(sampler.peak), cpu=cpu, machine_cpu=machine_cpu, update_limit=update_limit,
                       grant_failures=grant_failures)


def _machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (every core, not idle, not waiting for I/O)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


async def _send(stack: Stack, streams: list[list[list[bytes]]]) -> tuple[dict[str, int], dict[int, float]]:
    """Every stream in order, all streams at once; a 503 is retried as Alertmanager would.

    Returns the answers by status, and the unix time each stream's first delivery was answered 200.
    """
    semaphore = asyncio.Semaphore(CONCURRENCY)
    counts: dict[str, int] = defaultdict(int)
    first_answered: dict[int, float] = {}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=stack.headers) as http:
        async def post(body: bytes) -> None:
            for attempt in range(20):
                async with semaphore, http.post(f"{stack.relay_url}/alertmanager", data=body) as response:
                    await response.read()
                    status = response.status
                counts[str(status)] += 1
                if status == 200:
                    return
                if status < 500:
                    raise RuntimeError(f"relay refused a storm delivery with {status}")
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
            raise RuntimeError("a storm delivery was refused 20 times")

        async def stream(index: int, steps: list[list[bytes]]) -> None:
            for step in steps:
                await asyncio.gather(*(post(body) for body in step))
                first_answered.setdefault(index, time.time())

        await asyncio.gather(*(stream(index, steps) for index, steps in enumerate(streams)))
    return counts, first_answered


async def _alerts_received(client: Client, ids: list[str]) -> tuple[int, int, list[float]]:
    """(incidents that exist, alerts they received in total, seconds from detection to recorded action)."""
    semaphore = asyncio.Semaphore(16)
    found = received = 0
    to_action: list[float] = []

    async def one(workflow_id: str) -> None:
        nonlocal found, received
        async with semaphore:
            status = await client.get_workflow_handle(workflow_id).query(IncidentWorkflow.status)
        found += 1
        received += status.alerts_received
        if status.detected_at is not None and status.actions:
            to_action.append((status.actions[0].at - status.detected_at).total_seconds())

    await asyncio.gather(*(one(workflow_id) for workflow_id in ids))
    return found, received, to_action


async def _wait_actions(stack: Stack, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        actions = await stack.actions(kind="restart")
        if len({(a["namespace"], a["name"]) for a in actions if str(a["namespace"]).startswith("storm-")}) >= expected:
            return True
        await asyncio.sleep(0.25)
    return False
