"""A drill stack: the sandbox, the real relay, all of zerotouch's workers, the shipped policy made fast."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.e2e.relaying import relaying
from tests.support.policies import fast_policy
from workers.run import build_workers
from zerotouch.drill_models import DrillResult
from zerotouch.names import ALL_QUEUES
from zerotouch.policy import load_policy
from zerotouch.settings import WorkerSettings

TOKEN = "drills-" + uuid.uuid4().hex
# The drills the tests run: the shipped crashloop drill's shape with test-sized deadlines.
DRILLS: list[dict[str, Any]] = [
    {"name": "crashloop", "fault": "crashloop", "target": "shop/web", "expect": "auto_resolved", "deadline": "60s",
     "severity_weight": 3, "alert": {"alertname": "KubePodCrashLooping",
                                     "labels": {"namespace": "shop", "deployment": "web", "severity": "critical"}}},
    {"name": "watchdog", "fault": "watchdog_alert", "target": "monitoring/alertmanager", "expect": "no_action",
     "quiet_for": "4s", "alert": {"alertname": "Watchdog", "labels": {"namespace": "monitoring"}}},
    # An OOM alert for shop/checkout, which is healthy: confirmation finds no OOM kill, nothing acts.
    {"name": "healthy", "fault": "healthy_workload_alert", "target": "shop/checkout", "expect": "no_action",
     "quiet_for": "6s", "alert": {"alertname": "KubePodOOMKilled",
                                  "labels": {"namespace": "shop", "deployment": "checkout", "severity": "warning"}}},
    # No alert: nothing acts on it, so cancelling it midway tests only the drill's own cleanup.
    {"name": "oom-unwatched", "fault": "oom", "target": "shop/email-worker", "deadline": "5m"},
    # Out of time before anything could have happened: a failed drill.
    {"name": "crashloop-too-fast", "fault": "crashloop", "target": "shop/checkout", "deadline": "1s",
     "alert": {"alertname": "KubePodCrashLooping", "labels": {"namespace": "shop", "deployment": "checkout"}}},
]


@dataclass
class DrillStack:
    client: Client
    sandbox: SandboxCluster
    cluster: str
    ledger_url: str
    policy_path: Path

    async def run(self, name: str, **start: Any) -> DrillResult:
        from starters.drill import start_drill

        policy = load_policy(self.policy_path)
        _, result = await start_drill(self.client, policy, name, cluster=self.cluster, wait=True, **start)
        assert result is not None
        return result


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def drills(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> AsyncIterator[DrillStack]:
    workdir = tmp_path_factory.mktemp("drills")
    policy_path = fast_policy(workdir / "policy.yaml")
    document = yaml.safe_load(policy_path.read_text())
    document["drills"] = {**getattr(request.module, "DRILLS_SETTINGS", {}),  # environment, namespaces
                          "drills": getattr(request.module, "DRILLS", DRILLS)}  # a module may declare its own
    if hasattr(request.module, "RECOVERY_NODES"):  # and the node recovery its node drills watch
        document.setdefault("recovery", {})["nodes"] = request.module.RECOVERY_NODES
    policy_path.write_text(yaml.safe_dump(document, sort_keys=False))
    policy = load_policy(policy_path)
    cluster = f"d{uuid.uuid4().hex[:6]}"
    ledger_url = f"sqlite:///{workdir / 'ledger.db'}"
    async with relaying(dev_env, policy, token=TOKEN, cluster=cluster, service="zerotouch-drills") as started:
        # Where `zerotouch up` leaves them: the drill's delivery reads the relay from the state dir.
        (workdir / "endpoints.json").write_text(json.dumps({"relay": started.relay_url}))
        (workdir / "relay-token").write_text(TOKEN)
        settings = WorkerSettings(kubernetes_url=started.sandbox.url, prometheus_url=None, ledger_url=ledger_url,
                                  policy_path=str(policy_path), state_dir=str(workdir))
        with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
            async with httpx.AsyncClient(timeout=10.0) as http, contextlib.AsyncExitStack() as stack:
                for worker in build_workers(started.client, ALL_QUEUES, settings, http=http, executor=executor,
                                            cluster=cluster):
                    await stack.enter_async_context(worker)
                yield DrillStack(started.client, started.sandbox, cluster, ledger_url, policy_path)
