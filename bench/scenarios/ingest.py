"""Scenario 1: distinct alerts per second through the relay vs raw signal-with-start, same server."""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from bench.alerts import RESTART_ALERT, incident_id, labels_for, webhook
from bench.procs import cpu_seconds
from bench.profile import Profile
from bench.report import Goal, Section
from bench.stack import Stack, zerotouch_stack
from bench.stats import median, spread
from zerotouch.alerts import AlertEvent, fingerprint_of
from zerotouch.incident_signals import summary_of
from zerotouch.models import IncidentInput
from zerotouch.names import INCIDENT_WORKFLOW, SIGNAL_ALERT_FIRED, WORKFLOWS_QUEUE, queue_for

CONCURRENCY = 32


def _cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of the dev server, the relay and this process (the load generator)."""
    assert stack.relay is not None
    return {"temporal": cpu_seconds(stack.temporal.pid), "relay": cpu_seconds(stack.relay.pid),
            "load generator": cpu_seconds(os.getpid())}


def _labels(round_no: int, mode: str, count: int) -> list[dict[str, str]]:
    return [labels_for(RESTART_ALERT, f"ingest-{round_no}-{mode}", f"d{i}") for i in range(count)]


async def _through_relay(stack: Stack, labels: list[dict[str, str]]) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    bodies = [webhook(one) for one in labels]
    failures: list[int] = []
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=stack.headers) as http:
        async def post(body: bytes) -> None:
            async with semaphore, http.post(f"{stack.relay_url}/alertmanager", data=body) as response:
                await response.read()
                if response.status != 200:
                    failures.append(response.status)

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in bodies))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"relay refused {len(failures)} of {len(bodies)} alerts: {sorted(set(failures))}")
    return len(bodies) / elapsed


async def _raw(client: Client, labels: list[dict[str, str]]) -> float:
    """The relay's own call (signal-with-start, USE_EXISTING, summary), made straight from a client."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    queue = queue_for(WORKFLOWS_QUEUE, "")

    async def start(one: dict[str, str]) -> None:
        event = AlertEvent(fingerprint=fingerprint_of(one), status="firing", labels=one,
                           starts_at=datetime.now(UTC), received_at=datetime.now(UTC))
        workflow_id = incident_id(one)
        async with semaphore:
            await client.start_workflow(
                INCIDENT_WORKFLOW, IncidentInput(incident_id=workflow_id, cluster=""), id=workflow_id,
                task_queue=queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal=SIGNAL_ALERT_FIRED, start_signal_args=[event], static_summary=summary_of(event),
            )

    started = time.perf_counter()
    await asyncio.gather(*(start(one) for one in labels))
    return len(labels) / (time.perf_counter() - started)


async def _count_incidents(client: Client, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = (await client.count_workflows(f"WorkflowType = '{INCIDENT_WORKFLOW}'")).count
        if count >= expected:
            return count
        await asyncio.sleep(0.5)
    return count


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    rounds, size = (2, 40) if quick else (5, 1000)
    if os.environ.get("BENCH_INGEST_SIZE"):
        rounds, size = 3, int(os.environ["BENCH_INGEST_SIZE"])
    relay_rates: list[float] = []
    raw_rates: list[float] = []
    ratios: list[float] = []
    cpu: dict[str, dict[str, float]] = {"relay": defaultdict(float), "raw": defaultdict(float)}
    # No worker: this measures accepting alerts, not working on them (scenario 3 does both).
    async with zerotouch_stack(workdir, policy_path=policy_path, worker=False) as stack:
        # Warm both paths (connections, JIT-free but cache-warm) outside the measurement.
        await _through_relay(stack, _labels(-1, "relay", 20))
        await _raw(stack.client, _labels(-1, "raw", 20))
        for round_no in range(rounds):
            order = ("relay", "raw") if round_no % 2 == 0 else ("raw", "relay")
            rates: dict[str, float] = {}
            for mode in order:
                labels = _labels(round_no, mode, size)
                before = _cpu(stack)
                if mode == "relay":
                    rates[mode] = await _through_relay(stack, labels)
                else:
                    rates[mode] = await _raw(stack.client, labels)
                after = _cpu(stack)
                for process, used in after.items():
                    cpu[mode][process] += used - before[process]
            relay_rates.append(rates["relay"])
            raw_rates.append(rates["raw"])
            ratios.append(rates["relay"] / rates["raw"])
        profile_lines: list[str] = []
        if Profile.available():
            assert stack.relay is not None
            with Profile(stack.relay.pid, workdir / "relay.pyspy") as profile:
                await _through_relay(stack, _labels(-2, "relay", size))
            profile_lines = [f"py-spy on the relay over one more relay round of {size} (not counted): "
                             + " ".join(profile.summary())]
        expected = 40 + 2 * rounds * size + (size if profile_lines else 0)
        counted = await _count_incidents(stack.client, expected)
        journal = stack.journal_mode()
    if counted != expected:
        raise RuntimeError(f"expected {expected} incident workflows, Temporal has {counted}")
    ratio = median(ratios)
    return Section(
        title="1. Relay ingest throughput",
        how=(f"{rounds} rounds; in each, {size} distinct alerts (one per webhook, each a new incident) through "
             f"the relay and {size} more by the relay's own `client.start_workflow` call (signal-with-start, "
             f"`USE_EXISTING`) straight from a client, the order alternating per round, {CONCURRENCY} in flight. "
             "Relay, Temporal dev server and load generator are separate processes; no worker runs, so this is "
             f"the ingest path alone. Temporal counted {counted} incident workflows afterwards (all of them). "
             f"Dev server SQLite journal mode read back from its file: `{journal}`."),
        table=[["path", "alerts/s median (min-max)"],
               ["relay (HTTP → validate → signal-with-start → 200)", spread(relay_rates)],
               ["raw `client.start_workflow`", spread(raw_rates)],
               ["ratio relay / raw (per round)", spread(ratios, 2)]],
        notes=[f"CPU milliseconds per alert, all rounds ({rounds * size} alerts per path): " + "; ".join(
            f"{mode}: " + ", ".join(f"{process} {used / (rounds * size) * 1000:.1f}"
                                    for process, used in sorted(cpu[mode].items()))
            for mode in ("relay", "raw")) + f". The machine has {os.cpu_count()} cores for all of them.",
               *profile_lines],
        goals=[Goal("relay/raw ≥ 0.9", ratio >= 0.9, f"{ratio:.2f} ({median(relay_rates):.0f} vs "
                                                    f"{median(raw_rates):.0f} alerts/s)")],
        data={"relay": relay_rates, "raw": raw_rates, "ratios": ratios, "journal_mode": journal,
              "cpu": {mode: dict(values) for mode, values in cpu.items()}},
    )
