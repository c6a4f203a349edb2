"""`zerotouch worker --metrics-port` and `zerotouch relay` serve Prometheus metrics; bad OTEL settings fail."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.drills.test_drill_metrics import append, result
from zerotouch.ports import free_port


async def _start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "OTEL_TRACES_EXPORTER": "none", **(env or {})},
    )


async def _stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.stdout is not None
    return (await process.stdout.read()).decode()


async def _scrape_until(url: str, needle: str, process: asyncio.subprocess.Process, timeout: float = 30) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    text = ""
    async with httpx.AsyncClient(timeout=5) as http:
        while asyncio.get_running_loop().time() < deadline:
            assert process.returncode is None, await _stop(process)
            try:
                text = (await http.get(url)).text
            except httpx.TransportError:
                text = ""
            if needle in text:
                return text
            await asyncio.sleep(0.3)
    raise AssertionError(f"{needle} not at {url}: {text[:2000]}")


async def test_worker_and_relay_serve_metrics(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    address = dev_env.client.service_client.config.target_host
    metrics_port, relay_port = free_port(), free_port()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    append(ledger_url, result(1, "crashloop", True, 12.5))  # a drill the observe worker recorded
    worker = await _start("worker", "--queue", "zerotouch-observe", "--cluster", "metricscli",
                          "--address", address, "--metrics-port", str(metrics_port),
                          env={"ZEROTOUCH_LEDGER_URL": ledger_url})
    relay = await _start("relay", "--port", str(relay_port), "--address", address)
    try:
        text = await _scrape_until(f"http://127.0.0.1:{metrics_port}/metrics", "temporal_worker_start_total", worker)
        assert 'task_queue="zerotouch-observe-metricscli"' in text
        assert 'service_name="zerotouch-worker"' in text
        assert "# TYPE zerotouch_schedule_runs gauge" in text  # the observe worker watches schedules
        # and serves the drills' gauges from its ledger, as `zerotouch up`'s relay does
        assert 'zerotouch_drill_last_passed{fault="crashloop"} 1.0' in text
        assert 'zerotouch_drill_mttr_median_seconds{fault="crashloop"} 12.5' in text
        assert "zerotouch_drill_resilience_score 1.0" in text
        relay_text = await _scrape_until(f"http://127.0.0.1:{relay_port}/metrics", "target_info", relay)
        assert 'service_name="zerotouch-relay"' in relay_text
    finally:
        worker_output = await _stop(worker)
        await _stop(relay)
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in worker_output


async def test_an_unknown_trace_exporter_is_refused_by_name(dev_env: WorkflowEnvironment) -> None:
    address = dev_env.client.service_client.config.target_host
    worker = await _start("worker", "--queue", "zerotouch-observe", "--address", address,
                          env={"OTEL_TRACES_EXPORTER": "zipkin"})
    output = await asyncio.wait_for(_stop_after_exit(worker), timeout=30)
    assert worker.returncode == 2 and "OTEL_TRACES_EXPORTER='zipkin'" in output, output


async def test_a_busy_metrics_port_is_a_clear_usage_error(dev_env: WorkflowEnvironment) -> None:
    address = dev_env.client.service_client.config.target_host
    port = free_port()
    first = await _start("worker", "--queue", "zerotouch-observe", "--address", address, "--metrics-port", str(port))
    try:
        await _scrape_until(f"http://127.0.0.1:{port}/metrics", "target_info", first)
        second = await _start("worker", "--queue", "zerotouch-observe", "--address", address,
                              "--metrics-port", str(port))
        output = await asyncio.wait_for(_stop_after_exit(second), timeout=30)
        assert second.returncode == 2 and f"127.0.0.1:{port}" in output and "--metrics-port" in output, output
    finally:
        await _stop(first)


async def _stop_after_exit(process: asyncio.subprocess.Process) -> str:
    await process.wait()
    assert process.stdout is not None
    return (await process.stdout.read()).decode()
