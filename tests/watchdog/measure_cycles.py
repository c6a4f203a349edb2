"""The watchdog's cost per check cycle (BENCHMARKS.md): N cycles of every shipped check plus the silence probe.

The same stack as tests/watchdog/test_watchdog.py: Temporal's dev server, the sandbox scraped by Debian's
Prometheus with the stock rules, the relay and all workers in this process. One workload crash loops so
that a cycle also finds something and tells an incident. Run: ``python -m tests.watchdog.measure_cycles 50``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from temporalio.testing import WorkflowEnvironment

from embedded.sandbox_monitoring import SandboxMonitoring
from tests.e2e.relaying import relaying
from tests.support.policies import fast_policy
from tests.support.zt import running_workers
from zerotouch.binaries import temporal_cli
from zerotouch.names import SEARCH_ATTRIBUTES, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter
from zerotouch.watchdog import WATCHDOG_WORKFLOW, WatchdogArgs, WatchdogInput, WatchdogResult


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(cycles: int) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(), port=free_port(),
                                                search_attributes=SEARCH_ATTRIBUTES, data_converter=data_converter())
    try:
        with tempfile.TemporaryDirectory() as scratch:
            workdir = Path(scratch)
            token = uuid.uuid4().hex
            (workdir / "token").write_text(token)
            path = fast_policy(workdir / "policy.yaml", target_cooldown="10m")
            cluster = f"bench{uuid.uuid4().hex[:6]}"
            policy = load_policy(path)
            async with relaying(env, policy, token=token, cluster=cluster, service="watchdog-bench") as up:
                document = yaml.safe_load(path.read_text())
                document["watchdog"] = {"relay_url": up.relay_url}  # every shipped check, and the silence probe
                path.write_text(yaml.safe_dump(document, sort_keys=False))
                monitoring = SandboxMonitoring(workdir, sandbox_url=up.sandbox.url, relay_url=up.relay_url,
                                               token_file=workdir / "token", hold="2s", window="15s", interval="1s")
                try:
                    await asyncio.to_thread(monitoring.start)
                    async with running_workers(up.client, cluster, kubernetes_url=up.sandbox.url,
                                               prometheus_url=monitoring.prometheus_url, policy_path=str(path)):
                        up.sandbox.inject("crashloop", namespace="shop", deployment="checkout")
                        await asyncio.sleep(5)  # scraped: the crash-loop check has a finding
                        inside, outside, queries, findings = [], [], set(), []
                        for number in range(cycles):
                            started = time.perf_counter()
                            result: WatchdogResult = await up.client.execute_workflow(
                                WATCHDOG_WORKFLOW, WatchdogInput(cluster=cluster, arguments=WatchdogArgs()),
                                id=f"watchdog-bench-{number}", task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
                                result_type=WatchdogResult)
                            outside.append(time.perf_counter() - started)
                            inside.append(result.seconds)
                            queries.add(result.queries)
                            findings.append(len(result.findings))
                        print(f"cycles={cycles} checks={len(result.checks)} promql_queries_per_cycle={sorted(queries)} "
                              f"relay_reads_per_cycle={1 if result.silence else 0} "
                              f"findings_per_cycle(min/max)={min(findings)}/{max(findings)}")
                        for name, values in (("workflow (workflow.now)", inside), ("client round trip", outside)):
                            print(f"{name}: p50={_percentile(values, 0.5):.3f}s p95={_percentile(values, 0.95):.3f}s "
                                  f"mean={statistics.mean(values):.3f}s max={max(values):.3f}s")
                        per_check = {c.name: round(c.seconds * 1000, 1) for c in result.checks}
                        print(f"last cycle, query time per check (ms): {per_check}")
                finally:
                    monitoring.stop()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
