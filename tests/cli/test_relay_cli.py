"""`zerotouch relay --cluster` feeds the workers of that cluster scope, `--max-body-bytes` bounds a
webhook; bad flags are refused."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.cli.test_metrics_cli import _scrape_until, _start, _stop
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.ports import free_port


async def test_relay_cluster_scope_reaches_the_workflow_task_queue(dev_env: WorkflowEnvironment) -> None:
    address = dev_env.client.service_client.config.target_host
    port, cluster = free_port(), f"c{uuid.uuid4().hex[:6]}"
    relay = await _start("relay", "--port", str(port), "--address", address, "--cluster", cluster,
                         "--temporal-timeout", "5", "--max-body-bytes", "20000")
    try:
        await _scrape_until(f"http://127.0.0.1:{port}/metrics", "target_info", relay)
        body = {"version": "4", "status": "firing", "receiver": "zerotouch", "groupLabels": {},
                "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "groupKey": "{}",
                "alerts": [{"status": "firing", "labels": {"alertname": "ScopeTest", "namespace": "shop"},
                            "annotations": {}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": ""}]}
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"http://127.0.0.1:{port}/alertmanager", json=body)
        assert response.status_code == 200, response.text
        async with httpx.AsyncClient(timeout=30) as http:
            too_large = await http.post(f"http://127.0.0.1:{port}/alertmanager", content=b" " * 20001,
                                        headers={"Content-Type": "application/json"})
        assert too_large.status_code == 413 and "20000 bytes" in too_large.text, too_large.text
        [incident_id] = response.json()["incidents"]
        handle = dev_env.client.get_workflow_handle(incident_id)
        description = await handle.describe()
        assert description.task_queue == queue_for(WORKFLOWS_QUEUE, cluster)
        await handle.terminate("test over")  # no worker serves this scope
    finally:
        await _stop(relay)


def test_a_bad_temporal_timeout_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "cli", "relay", "--temporal-timeout", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "outside (0, 300]" in result.stderr


