"""Scenario 5: fault in the sandbox → Debian's Prometheus and Alertmanager (1 s intervals) → relay →
incident → restart → verified recovery, split into detection and zerotouch's own share."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import httpx
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from bench.alerts import incident_id
from bench.report import Goal, Section
from bench.stack import Stack, zerotouch_stack
from bench.stats import median, spread
from embedded.monitoring import Alertmanager, Prometheus, fast_rules
from workflows.incident import IncidentWorkflow
from zerotouch.models import IncidentStatus

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "shop"
ALERT = "KubePodCrashLooping"


async def _resolved(stack: Stack, workflow_id: str, timeout: float = 120.0) -> IncidentStatus:
    deadline = time.monotonic() + timeout
    last: IncidentStatus | None = None
    while time.monotonic() < deadline:
        try:
            last = await stack.client.get_workflow_handle(workflow_id).query(IncidentWorkflow.status)
            if last.resolved_at is not None and last.state in ("resolved", "closed"):
                return last
            if last.state == "escalated":
                raise RuntimeError(f"{workflow_id} escalated instead of recovering: {last.timeline[-1].message}")
        except (RPCError, WorkflowQueryFailedError):
            pass  # not started yet
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{workflow_id} did not recover within {timeout:.0f}s; last: {last and last.state}")


def _ts(moment: datetime | None) -> float:
    if moment is None:
        raise RuntimeError("incident status lacks a timestamp")
    return moment.timestamp()


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    runs = 2 if quick else 20
    names = [f"mttr{i}" for i in range(runs)]
    rows: list[dict[str, float]] = []
    prometheus = alertmanager = None
    async with zerotouch_stack(workdir, policy_path=policy_path, sandbox_tick=0.2) as stack:
        try:
            await stack.create_deployments(NAMESPACE, names)
            alertmanager = Alertmanager(workdir, stack.relay_url, workdir / "relay-token")
            rules = fast_rules(REPO / "deploy/prometheus/rules/zerotouch.rules.yml", workdir / "rules.yml")
            prometheus = Prometheus(workdir, [stack.sandbox_url.removeprefix("http://")], rules,
                                    alertmanager.url.removeprefix("http://"))
            await asyncio.sleep(5.0)  # a few scrapes and evaluations of the healthy state first
            async with httpx.AsyncClient(timeout=30.0) as http:
                for name in names:
                    injected = time.time()
                    response = await http.post(f"{stack.sandbox_url}/sandbox/v1/faults",
                                               json={"kind": "crashloop", "namespace": NAMESPACE, "deployment": name})
                    response.raise_for_status()
                    labels = {"alertname": ALERT, "namespace": NAMESPACE, "deployment": name}
                    status = await _resolved(stack, incident_id(labels))
                    action = await stack.wait_action(NAMESPACE, name, timeout=5.0)
                    detected, recovered = _ts(status.detected_at), _ts(status.resolved_at)
                    acted = float(action["timestamp"])
                    rows.append({"detection": detected - injected, "to_action": acted - detected,
                                 "verification": recovered - acted, "zerotouch": recovered - detected,
                                 "mttr": recovered - injected})
        finally:
            for process in (prometheus, alertmanager):
                if process is not None:
                    process.stop()

    def column(key: str) -> list[float]:
        return [row[key] for row in rows]

    mttr = median(column("mttr"))
    zt_share = median(column("zerotouch")) / mttr
    return Section(
        title="5. Full loop MTTR",
        how=(f"{runs} runs, each on its own deployment: `crashloop` injected into the sandbox → Debian's Prometheus "
             "(scrape and rule evaluation every 1 s, the shipped rules with `for: 1s`) → Alertmanager "
             "(`group_wait: 0s`, `group_interval: 1s`) → relay → incident → `restart_deployment` → verification "
             "(rollout health and the runbook's PromQL holding 2 s) → resolved. Detection ends when the incident "
             "workflow has the alert (its `detected_at`); zerotouch's share runs from there to `resolved_at`."),
        table=[["phase", "median (min-max)"],
               ["detection: fault → incident has the alert (Prometheus + Alertmanager)",
                spread(column("detection"), 2, " s")],
               ["zerotouch: alert → first action", spread(column("to_action"), 2, " s")],
               ["zerotouch: action → verified (includes the 2 s hold)", spread(column("verification"), 2, " s")],
               ["zerotouch share (alert → verified)", spread(column("zerotouch"), 2, " s")],
               ["MTTR: fault → verified recovery", spread(column("mttr"), 2, " s")]],
        goals=[Goal("MTTR p50 < 60 s (Phase-66) / 45 s (zero-ops claim)", mttr < 45.0, f"{mttr:.1f} s"),
               Goal("zerotouch share of MTTR (no bar)", None, f"{zt_share:.0%}")],
        data={"runs": rows},
    )
