"""Steady alert traffic for the soak: fresh alerts that resolve by themselves, plus real sandbox faults.

The test plays Prometheus: a faulted deployment's alert is re-sent while the sandbox says it
is unhealthy and then left to expire, as a rule with a short ``for`` would behave.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from sandbox import SandboxCluster
from tests.delivery.alertmanager import Alertmanager, am_alert
from tests.delivery.incidents import incident_id

NAMESPACE = "shop"
FAULT_TARGETS = ("web", "checkout", "email-worker")
FAULT_ALERT = "KubePodCrashLooping"
# Longer than the soak's Temporal blip plus Alertmanager's retry delays: an alert that fires
# and resolves entirely inside an outage opens no incident (Alertmanager never sends a group
# whose only news is resolved alerts, and the relay never lets a resolved alert start one).
SYNTHETIC_LIFETIME_SECONDS = 30.0
FAULT_ALERT_LIFETIME_SECONDS = 3.0
# Alertmanager tells a receiver about a group only when its firing set changes: if an alert
# fires again before its resolution was delivered, the receiver hears nothing (until
# repeat_interval). So a target is broken again only once its last alert's resolution has
# surely been delivered: expiry + a Temporal blip (12 s) + Alertmanager's 10 s notify context.
RESOLUTION_DELIVERY_SECONDS = 25.0
# The load must keep flowing while Temporal is away; the SDK alone would retry for ~10 s.
DESCRIBE_TIMEOUT_SECONDS = 2.0


@dataclass
class Load:
    alertmanager: Alertmanager
    sandbox: SandboxCluster
    client: Client
    alerts_per_tick: int
    synthetic: list[dict[str, Any]] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)
    api_failures: int = 0
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _targets: itertools.cycle[str] = field(default_factory=lambda: itertools.cycle(FAULT_TARGETS))
    _alert_ends: dict[str, float] = field(default_factory=dict)

    async def tick(self) -> None:
        """Fire new alerts (no runbook matches them: they escalate, then close when they resolve),
        and re-fire the alert of every deployment that is still broken."""
        fresh = [am_alert("SoakSynthetic", namespace="soak", deployment=f"svc-{next(self._counter):05d}",
                          lasts=SYNTHETIC_LIFETIME_SECONDS) for _ in range(self.alerts_per_tick)]
        broken = [target for target in FAULT_TARGETS if not self.sandbox.is_healthy(NAMESPACE, target)]
        for target in broken:
            self._alert_ends[target] = asyncio.get_running_loop().time() + FAULT_ALERT_LIFETIME_SECONDS
        await self.alertmanager.post(fresh + [
            am_alert(FAULT_ALERT, namespace=NAMESPACE, deployment=target, severity="critical",
                     lasts=FAULT_ALERT_LIFETIME_SECONDS) for target in broken])
        self.synthetic += fresh

    async def inject_fault(self) -> str | None:
        """Crash-loop the next deployment, unless its previous incident is still open (a re-fire
        would join it as "the fix did not hold" rather than start a new remediation) or its
        previous alert's resolution may not have reached the relay yet."""
        target = next(self._targets)
        quiet_since = self._alert_ends.get(target, float("-inf")) + RESOLUTION_DELIVERY_SECONDS
        if (asyncio.get_running_loop().time() < quiet_since or not self.sandbox.is_healthy(NAMESPACE, target)
                or await self._incident_open(target)):
            return None
        self.sandbox.inject("crashloop", namespace=NAMESPACE, deployment=target)
        self.injected.append(target)
        return target

    def fail_api_requests(self) -> None:
        """The next two deployment requests to the sandbox API fail with 500 (activities retry)."""
        self.sandbox.fail_requests(status=500, count=2, path_contains="/deployments")
        self.api_failures += 2

    @staticmethod
    def fault_incident_id(target: str) -> str:
        return incident_id(am_alert(FAULT_ALERT, namespace=NAMESPACE, deployment=target))

    async def _incident_open(self, target: str) -> bool:
        workflow_id = self.fault_incident_id(target)
        try:
            async with asyncio.timeout(DESCRIBE_TIMEOUT_SECONDS):
                description = await self.client.get_workflow_handle(workflow_id).describe()
        except TimeoutError:  # Temporal is blipping: try this target again later
            return True
        except RPCError as error:
            # NOT_FOUND: never opened. Anything else (Temporal blipping): do not inject now.
            return error.status != RPCStatusCode.NOT_FOUND
        return description.status == WorkflowExecutionStatus.RUNNING
