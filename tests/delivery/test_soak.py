"""Bounded soak: steady alerts through Alertmanager → relay → workers, sandbox faults, a Temporal blip.

The relay and the workers run as their own processes (`zerotouch relay`, `zerotouch worker`),
so their memory can be read from /proc. The soak lasts $ZEROTOUCH_SOAK_SECONDS (default 60,
CI-sized) after a warm-up; a longer run is the same test with a larger value.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox import SandboxCluster
from tests.delivery.alertmanager import Alertmanager
from tests.delivery.conftest import Temporal, report, start_relay
from tests.delivery.incidents import ALERTMANAGER_GROUP_BY, executions, final_states, incident_id, wait_for_incidents
from tests.delivery.load import FAULT_TARGETS, NAMESPACE, Load
from tests.support.policies import fast_policy
from tests.support.processes import ChildProcess, zerotouch_command
from zerotouch.ports import free_port

SOAK_ENV = "ZEROTOUCH_SOAK_SECONDS"
SOAK_SECONDS = float(os.environ.get(SOAK_ENV, "60"))
# The worker's first incidents import and cache the workflow sandbox's modules, the relay's
# first requests build its connection pools: growth that happens once, not per alert.
WARMUP_SECONDS = 10.0
TICK_SECONDS = 0.5
ALERTS_PER_TICK = 1
FAULT_EVERY_TICKS = 12
API_FAILURES_EVERY_TICKS = 20
# Longer than the relay's 10 s Temporal timeout, so deliveries during the blip get 503 and are retried.
BLIP_SECONDS = 12.0
SAMPLE_SECONDS = 1.0
DRAIN_TIMEOUT = 180.0
# Memory is flat if the median RSS of the last third of the samples is at most 1.5 x that of
# the first third plus 16 MiB. Python's allocator keeps the arenas of its busiest moment (the
# burst after the Temporal blip) and gRPC/SQLite buffers grow to their working size, so RSS
# steps up and stays there without being a leak; 1.5 x + 16 MiB absorbs that step. A leak
# grows with the work done, and the two medians lie ~2/3 of the run apart: in the CI soak
# (~85 incidents between them, worker ~175 MiB) only a leak above ~1 MiB per incident fails
# it; in an hour's soak (~5,000 incidents) one above ~25 KiB per incident does.
RSS_RATIO = 1.5
RSS_SLACK_KIB = 16 * 1024


@dataclass
class Memory:
    samples: dict[str, list[int]] = field(default_factory=dict)

    def sample(self, processes: dict[str, ChildProcess]) -> None:
        for name, process in processes.items():
            process.check_alive()
            self.samples.setdefault(name, []).append(process.rss_kib())

    def trend(self, name: str, points: int = 10) -> list[float]:
        """About ``points`` samples spread over the run, in MiB, for the report."""
        values = self.samples[name]
        step = max(1, len(values) // points)
        return [round(value / 1024, 1) for value in values[::step]]

    def thirds(self, name: str) -> tuple[float, float]:
        values = self.samples[name]
        third = max(1, len(values) // 3)
        return statistics.median(values[:third]), statistics.median(values[-third:])


async def _blip(temporal: Temporal) -> float:
    """Kill the dev server, stay down, restart it on the same file and port; the seconds it was away."""
    started = asyncio.get_running_loop().time()
    await temporal.server.kill()
    await asyncio.sleep(BLIP_SECONDS)
    await temporal.server.start()
    return asyncio.get_running_loop().time() - started


# The suite's 300 s default would cut a long soak short; setup, drain and teardown get their own room.
@pytest.mark.timeout(WARMUP_SECONDS + SOAK_SECONDS + 2 * DRAIN_TIMEOUT + 120)
async def test_soak_loses_no_incident_and_keeps_memory_flat(
    temporal: Temporal, tmp_path: Path, token_file: Path
) -> None:
    policy = fast_policy(tmp_path / "policy.yaml")
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.1)
    sandbox.start()
    worker: ChildProcess | None = None
    relay: ChildProcess | None = None
    alertmanager: Alertmanager | None = None
    blip: asyncio.Task[float] | None = None
    memory = Memory()
    loop = asyncio.get_running_loop()
    try:
        worker = await ChildProcess.start(
            zerotouch_command("worker", "--address", temporal.server.address, "--kubernetes-url", sandbox.url,
                              "--policy", str(policy)),
            log=tmp_path / "worker.log", name="worker",
            env={"ZEROTOUCH_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "ZEROTOUCH_STATE_DIR": str(tmp_path)},
        )
        port = free_port()
        relay = await start_relay(temporal, port, token_file, tmp_path / "relay.log", "--policy", str(policy))
        alertmanager = await Alertmanager.start(tmp_path, relay_url=f"http://127.0.0.1:{port}", token_file=token_file,
                                                group_by=ALERTMANAGER_GROUP_BY, group_wait="0s", group_interval="1s")
        processes = {"relay": relay, "worker": worker}
        load = Load(alertmanager, sandbox, temporal.client, alerts_per_tick=ALERTS_PER_TICK)
        before = await alertmanager.webhook_counters()

        start = loop.time()
        sampling_from, end = start + WARMUP_SECONDS, start + WARMUP_SECONDS + SOAK_SECONDS
        blip_at, next_sample = sampling_from + SOAK_SECONDS / 2, sampling_from
        for tick in itertools.count():
            now = loop.time()
            if now >= end:
                break
            await load.tick()
            if tick % FAULT_EVERY_TICKS == 0:
                await load.inject_fault()
            if tick % API_FAILURES_EVERY_TICKS == API_FAILURES_EVERY_TICKS // 2:
                load.fail_api_requests()
            if blip is None and now >= blip_at:
                blip = asyncio.create_task(_blip(temporal))  # the load keeps flowing meanwhile
            if now >= next_sample:
                memory.sample(processes)
                next_sample += SAMPLE_SECONDS
            await asyncio.sleep(TICK_SECONDS)
        assert blip is not None, "the soak ended before the Temporal blip"
        blip_seconds = await blip
        memory.sample(processes)
        soaked = loop.time() - start

        expected = {incident_id(alert) for alert in load.synthetic}
        runs = await wait_for_incidents(temporal.client, expected, timeout=DRAIN_TIMEOUT)
        states = await final_states(temporal.client, timeout=DRAIN_TIMEOUT)
        drained = loop.time() - start - soaked
        runs = await executions(temporal.client)
        counters = await alertmanager.webhook_counters() - before
        for process in processes.values():
            process.check_alive()
        relay_503s = relay.log.read_text(errors="replace").count("answering 503")
        restarts = len(sandbox.actions(namespace=NAMESPACE, kind="restart"))
        healthy = {target: sandbox.is_healthy(NAMESPACE, target) for target in FAULT_TARGETS}
    finally:
        if blip is not None and not blip.done():
            blip.cancel()
        if alertmanager is not None:
            await alertmanager.stop()
        for child in (relay, worker):
            if child is not None:
                await child.stop()
        sandbox.stop()

    missing = expected - runs.keys()
    assert not missing, f"{len(missing)} of {len(expected)} alerts never became incidents, e.g. {sorted(missing)[:5]}"
    duplicated = {workflow_id: runs[workflow_id] for workflow_id in expected if runs[workflow_id] != 1}
    assert not duplicated, f"incidents started more than once: {duplicated}"
    assert load.injected, "no fault was injected"
    # Each fault is injected only once its target's previous incident has closed: one new run each.
    fault_runs = {target: runs[load.fault_incident_id(target)] for target in set(load.injected)}
    assert fault_runs == Counter(load.injected), f"incident runs per faulted deployment: {fault_runs}"
    assert all(healthy.values()), f"faults left unrepaired: {healthy}"
    assert restarts >= len(load.injected), (restarts, load.injected)
    not_resolved = {key: state for key, state in states.items() if state != "resolved"}
    assert not not_resolved, f"incidents that closed other than resolved: {not_resolved}"

    rss = {}
    for name in processes:
        first, last = memory.thirds(name)
        rss[name] = {"first_third_median_mib": round(first / 1024, 1), "last_third_median_mib": round(last / 1024, 1),
                     "min_mib": round(min(memory.samples[name]) / 1024, 1),
                     "max_mib": round(max(memory.samples[name]) / 1024, 1)}
        assert last <= first * RSS_RATIO + RSS_SLACK_KIB, (name, rss[name], memory.samples[name])

    report("soak", {
        "soak_seconds": SOAK_SECONDS,
        "load_seconds": round(soaked, 1),
        "drain_seconds": round(drained, 1),
        "synthetic_alerts": len(load.synthetic),
        "faults_injected": len(load.injected),
        "sandbox_api_failures_injected": load.api_failures,
        "temporal_blip_seconds": round(blip_seconds, 1),
        "incident_executions": sum(runs.values()),
        "incidents_resolved": len(states),
        "restarts": restarts,
        "relay_503s": relay_503s,
        "am_requests": counters.requests,
        "am_requests_failed": counters.requests_failed,
        "am_flushes_failed": counters.notifications_failed,
        "rss_samples": len(memory.samples["relay"]),
        "rss_trend_mib": {name: memory.trend(name) for name in processes},
        "rss": rss,
    })
