"""Scenarios 3 and 6: an alert storm (repeats, duplicate receivers, flaps) and the footprint under it."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
from temporalio.client import Client

from bench.alerts import RESTART_ALERT, incident_id, labels_for, webhook
from bench.breakdown import activity_waits, waits_table
from bench.procs import cpu_seconds, rss_mib
from bench.report import Goal, Section
from bench.stack import Stack, zerotouch_stack
from bench.stats import median, percentile
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


class Sampler:
    """Peak RSS of the relay and the worker while a storm runs."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak: dict[str, float] = defaultdict(float)
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            for child in (self.stack.relay, self.stack.worker, self.stack.temporal):
                if child is not None and child.alive():
                    self.peak[child.name] = max(self.peak[child.name], rss_mib(child.pid))
            await asyncio.sleep(0.25)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _send(stack: Stack, streams: list[list[list[bytes]]]) -> dict[str, int]:
    """Every stream in order, all streams at once; a 503 is retried as Alertmanager would."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    counts: dict[str, int] = defaultdict(int)
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

        async def stream(steps: list[list[bytes]]) -> None:
            for step in steps:
                await asyncio.gather(*(post(body) for body in step))

        await asyncio.gather(*(stream(steps) for steps in streams))
    return counts


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


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> list[Section]:
    alerts, per_alert = (20, 10) if quick else (500, 20)
    rng = random.Random(5)  # noqa: S311 - a reproducible mix, not a secret
    targets = [(f"storm-{i % NAMESPACES}", f"s{i}") for i in range(alerts)]
    labels = [labels_for(RESTART_ALERT, ns, name) for ns, name in targets]
    streams = [deliveries_for(one, per_alert, rng) for one in labels]
    deliveries = sum(len(step) for steps in streams for step in steps)
    async with zerotouch_stack(workdir, policy_path=policy_path) as stack:
        for ns in sorted({ns for ns, _ in targets}):
            await stack.create_deployments(ns, [name for n, name in targets if n == ns])
        assert stack.relay is not None and stack.worker is not None
        await asyncio.sleep(3.0)
        idle = {child.name: rss_mib(child.pid) for child in (stack.relay, stack.worker, stack.temporal)}
        cpu_before = {child.name: cpu_seconds(child.pid) for child in (stack.relay, stack.worker, stack.temporal)}
        sampler = Sampler(stack)
        sampler.start()
        started = time.monotonic()
        counts = await _send(stack, streams)
        ingested = time.monotonic() - started
        drained = await _wait_actions(stack, alerts, timeout=120.0 if quick else 900.0)
        drain_seconds = time.monotonic() - started
        await sampler.stop()
        cpu_after = {child.name: cpu_seconds(child.pid) for child in (stack.relay, stack.worker, stack.temporal)}
        await asyncio.sleep(5.0)  # anything acting twice would show up by now
        actions = [a for a in await stack.actions(kind="restart") if str(a.get("namespace", "")).startswith("storm-")]
        count = (await stack.client.count_workflows(f"WorkflowType = '{INCIDENT_WORKFLOW}'")).count
        found, received, to_action = await _alerts_received(stack.client, [incident_id(one) for one in labels])
        ids = [incident_id(one) for one in labels]
        waits = await activity_waits(stack.client, ids[:: max(1, len(ids) // 60)])
        worker_log = stack.worker.log_path.read_text(errors="replace")
        update_limit = worker_log.count("limit on number of concurrent in-flight updates")
    by_target: dict[tuple[str, str], list[float]] = defaultdict(list)
    for action in actions:
        by_target[(action["namespace"], action["name"])].append(float(action["timestamp"]))
    too_close = sum(
        1 for stamps in by_target.values() for a, b in zip(sorted(stamps), sorted(stamps)[1:], strict=False)
        if b - a < TARGET_COOLDOWN_SECONDS
    )
    incidents = count - WARM_UP_INCIDENTS
    worker_cpu = cpu_after["worker"] - cpu_before["worker"]
    storm = Section(
        title="3. Storm",
        how=(f"{deliveries} webhook deliveries covering {alerts} distinct alerts ({per_alert} each: first and last "
             "firing, in between Alertmanager repeats, duplicate receivers (two identical deliveries at once) and "
             f"flaps (resolved, then firing again)), one alert per webhook, all alerts' streams at once with "
             f"{CONCURRENCY} requests in flight, each alert's deliveries in order; a 503 would be retried like "
             f"Alertmanager does. Targets: {alerts} healthy deployments in {NAMESPACES} namespaces; the runbook "
             "restarts; the Governor's per-target cooldown is the shipped 5 min."),
        table=[["measure", "value"],
               ["deliveries answered 200", f"{counts.get('200', 0)} of {deliveries} "
                                           f"(other answers: {dict((k, v) for k, v in counts.items() if k != '200')})"],
               ["ingest time (all deliveries answered)",
                f"{ingested:.1f} s ({deliveries / ingested:.0f} deliveries/s)"],
               ["drain time (first delivery → last first action)",
                f"{drain_seconds:.1f} s" + ("" if drained else " (timed out)")],
               ["incident workflows", f"{incidents} (expected {alerts})"],
               ["incidents answering, alerts they counted", f"{found}, {received} (sent {deliveries})"],
               ["restarts applied", f"{len(actions)} on {len(by_target)} targets"],
               ["two actions on one target inside 5 min", str(too_close)],
               ["per incident: detected → action recorded, p50 / p95 / max",
                f"{percentile(to_action, 50):.1f} s / {percentile(to_action, 95):.1f} s / "
                f"{max(to_action, default=0.0):.1f} s"],
               ["Governor updates refused by the server's in-flight limit (worker log, retried)", str(update_limit)]],
        more=[(f"Where incidents waited: activities in the histories of {len(ids[:: max(1, len(ids) // 60)])} "
               "incidents spread over the storm:", waits_table(waits))],
        goals=[Goal(f"exactly {alerts} incidents, none lost", incidents == alerts and found == alerts
                    and received == deliveries, f"{incidents} incidents; {received}/{deliveries} alerts counted"),
               Goal(f"actions ≤ {alerts}", len(actions) <= alerts, str(len(actions))),
               Goal("never two on one target inside its cooldown", too_close == 0, f"{too_close} violations"),
               Goal("drain time (no bar)", None, f"{drain_seconds:.1f} s")],
        data={"counts": dict(counts), "ingest_seconds": ingested, "drain_seconds": drain_seconds,
              "actions": len(actions), "incidents": incidents, "to_action": to_action,
              "update_limit": update_limit,
              "waits": {name: {k: median(v) for k, v in values.items()} for name, values in waits.items()}},
    )
    footprint = Section(
        title="6. Footprint",
        how=("Resident memory of each process before the storm (after warm-up, idle) and its peak during the storm "
             "(sampled every 0.25 s); CPU seconds each process used from the first delivery to the drain."),
        table=[["process", "RSS idle", "RSS peak under storm", "CPU seconds in storm", "CPU seconds per incident"],
               *[[name, f"{idle[name]:.0f} MiB", f"{sampler.peak[name]:.0f} MiB",
                  f"{cpu_after[name] - cpu_before[name]:.1f}",
                  f"{(cpu_after[name] - cpu_before[name]) / max(alerts, 1) * 1000:.0f} ms"]
                 for name in ("relay", "worker", "temporal")]],
        goals=[Goal("worker CPU per incident (no bar)", None, f"{worker_cpu / max(alerts, 1) * 1000:.0f} ms"),
               Goal("RSS relay / worker (no bar)", None,
                    f"{idle['relay']:.0f}/{idle['worker']:.0f} MiB idle, "
                    f"{sampler.peak['relay']:.0f}/{sampler.peak['worker']:.0f} MiB peak")],
        notes=["The worker process runs all four task queues (the embedded default). CPU per incident covers "
               f"everything the storm made it do: {deliveries // max(alerts, 1)} signals, triage, grant, action "
               "and verification per incident."],
        data={"idle": idle, "peak": dict(sampler.peak), "median_rss": median(list(idle.values()))},
    )
    return [storm, footprint]


async def _wait_actions(stack: Stack, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        actions = await stack.actions(kind="restart")
        if len({(a["namespace"], a["name"]) for a in actions if str(a["namespace"]).startswith("storm-")}) >= expected:
            return True
        await asyncio.sleep(0.25)
    return False
