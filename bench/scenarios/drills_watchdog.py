"""Scenario 12, the watchdog's cost per check cycle: WatchdogWorkflow cycles one after another on a stack
of the embedded default with Debian's Prometheus scraping the sandbox and Alertmanager sending to the relay
(`embedded/sandbox_monitoring.py`, as `zerotouch up --sandbox` runs them, at 1 s intervals).

One workload is broken by `unfixable` (it crash loops whatever is done), so each cycle also finds
something and tells its incident: the cost of a cycle with findings, not of an idle one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.procs import cpu_seconds
from bench.scenarios.drills_report import Cycles
from bench.scenarios.drills_setup import drills_policy
from bench.stack import Stack, zerotouch_stack
from embedded.sandbox_monitoring import SandboxMonitoring
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.watchdog import WATCHDOG_WORKFLOW, WatchdogArgs, WatchdogInput, WatchdogResult

BROKEN = ("shop", "checkout")
FIND_TIMEOUT = 60.0  # Prometheus' first scrapes of the crash loop, on a loaded 2-core machine


async def _cycle(stack: Stack) -> tuple[WatchdogResult, float]:
    """One cycle as its schedule starts it: a workflow of its own; (result, client round trip)."""
    started = time.perf_counter()
    result: WatchdogResult = await stack.client.execute_workflow(
        WATCHDOG_WORKFLOW, WatchdogInput(schedule="bench", arguments=WatchdogArgs()),
        id=f"bench-watchdog-{uuid.uuid4().hex[:12]}", task_queue=queue_for(WORKFLOWS_QUEUE, ""),
        result_type=WatchdogResult)
    return result, time.perf_counter() - started


async def _until_found(stack: Stack) -> None:
    """Cycles (not counted) until one finds the broken workload: Prometheus has scraped it."""
    deadline = time.monotonic() + FIND_TIMEOUT
    while True:
        result, _ = await _cycle(stack)
        if any(f.labels.get("namespace") == BROKEN[0] for f in result.findings):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no watchdog cycle found the crash loop of {'/'.join(BROKEN)} in "
                               f"{FIND_TIMEOUT:.0f} s; checks: {[(c.name, c.error) for c in result.checks]}")
        await asyncio.sleep(0.5)


async def watchdog_cycles(workdir: Path, declared: list[dict[str, Any]], *, quick: bool) -> Cycles:
    count = 3 if quick else 30
    workdir.mkdir(parents=True, exist_ok=True)
    policy = drills_policy(workdir / "policy.yaml", declared)
    monitoring: list[SandboxMonitoring] = []

    def start(stack: Stack) -> str:
        drills_policy(policy, declared, relay_url=stack.relay_url)  # the silence probe reads this relay
        found = SandboxMonitoring(stack.workdir, sandbox_url=stack.sandbox_url, relay_url=stack.relay_url,
                                  token_file=stack.workdir / "relay-token", hold="2s", window="15s", interval="1s")
        monitoring.append(found)
        found.start()
        assert found.prometheus_url is not None
        return found.prometheus_url

    try:
        async with zerotouch_stack(workdir / "stack", policy_path=policy, sandbox_tick=0.2, monitoring=start,
                                   warm_up=False) as stack:
            async with httpx.AsyncClient(timeout=30.0) as http:
                answer = await http.post(f"{stack.sandbox_url}/sandbox/v1/faults",
                                         json={"kind": "unfixable", "namespace": BROKEN[0], "deployment": BROKEN[1]})
                answer.raise_for_status()
            await _until_found(stack)
            assert stack.worker is not None
            cpu = {c.name: cpu_seconds(c.pid) for c in (stack.worker, stack.temporal)}
            results: list[tuple[WatchdogResult, float]] = []
            began = time.monotonic()
            for _ in range(count):
                results.append(await _cycle(stack))
            wall = time.monotonic() - began
            used = {c.name: cpu_seconds(c.pid) - cpu[c.name] for c in (stack.worker, stack.temporal)}
    finally:
        for found in monitoring:
            found.stop()
    last = results[-1][0]
    return Cycles(
        count=count, checks=[c.name for c in last.checks], queries=[r.queries for r, _ in results],
        workflow_seconds=[r.seconds for r, _ in results], round_trip=[rt for _, rt in results],
        findings=[len(r.findings) for r, _ in results], silence_probe=all(r.silence is not None for r, _ in results),
        check_ms={c.name: [1000 * x.seconds for r, _ in results for x in r.checks if x.name == c.name]
                  for c in last.checks},
        worker_cpu=used["worker"] / count, temporal_cpu=used["temporal"] / count, wall=wall)
