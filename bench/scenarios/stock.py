"""Scenario 5b: the full loop with the stock kube-prometheus rules (pod-only alerts, several per fault,
Alertmanager grouping by namespace), split into detection, owner resolution and zerotouch's own share."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from bench.report import Goal, Section
from bench.stack import Stack, zerotouch_stack
from bench.stats import median, spread
from embedded.sandbox_monitoring import SandboxMonitoring
from workflows.incident import IncidentWorkflow
from zerotouch.activity_names import RESOLVE_WORKLOAD
from zerotouch.alerts import WORKLOAD_GROUP, AlertEvent, group_value, incident_id_for
from zerotouch.models import IncidentStatus
from zerotouch.policy import load_policy

NAMESPACE = "shop"
# As tests/e2e/test_stock_rules.py: every rule's `for:` is HOLD, range windows shrink to WINDOW.
HOLD, WINDOW, INTERVAL = "2s", "15s", "1s"
TARGET_COOLDOWN = "10m"
ACTION_KINDS = ("restart", "rollback", "scale", "memory")


@dataclass(frozen=True)
class FaultClass:
    fault: str
    prefix: str
    action: str  # the sandbox's action kind the shipped policy answers with
    alertnames: tuple[str, ...]  # every stock alert whose incident could act on the workload


CLASSES = (
    FaultClass("crashloop", "crash", "restart", ("KubePodCrashLooping", "KubeDeploymentReplicasMismatch")),
    FaultClass("stuck-pending", "pending", "restart", ("KubeContainerWaiting", "KubeDeploymentReplicasMismatch")),
    FaultClass("stuck-rollout", "rollout", "rollback",
               ("KubeContainerWaiting", "KubeDeploymentRolloutStuck", "KubeDeploymentReplicasMismatch")),
)


@dataclass
class Run:
    kind: FaultClass
    deployment: str
    injected: float = 0.0
    pending: float | None = None  # ALERTS{alertstate="pending"}: the condition first held at an evaluation
    fired: float | None = None  # ALERTS{alertstate="firing"}: the `for:` held (Alertmanager's startsAt)
    detected: float = 0.0
    acted: float = 0.0
    recovered: float = 0.0
    acting_alert: str = ""
    resolution: float | None = None  # resolve_workload in the acting incident; None: labels named it
    actions: int = -1
    error: str = ""


def _incident_ids(kind: FaultClass, deployment: str, group_by: list[str]) -> dict[str, str]:
    """The relay's incident ID of each alert name for the deployment (its pods' alerts map here too)."""
    ids = {}
    for alertname in kind.alertnames:
        labels = {"alertname": alertname, "namespace": NAMESPACE, WORKLOAD_GROUP: deployment}
        event = AlertEvent(fingerprint="bench", status="firing", labels=labels, starts_at=datetime.now(UTC))
        ids[alertname] = incident_id_for(event, group_by)
    return ids


async def _status(stack: Stack, incident_id: str) -> IncidentStatus | None:
    with contextlib.suppress(RPCError, WorkflowQueryFailedError):
        return await stack.client.get_workflow_handle(incident_id).query(IncidentWorkflow.status)
    return None


async def _first_to_act(stack: Stack, ids: dict[str, str], timeout: float = 120.0) -> tuple[str, IncidentStatus]:
    """The alert name whose incident acted and verified recovery first, with its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for alertname, incident_id in ids.items():
            status = await _status(stack, incident_id)
            if status is not None and status.actions and status.resolved_at is not None \
                    and status.state in ("resolved", "closed"):
                return alertname, status
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no incident of {sorted(ids)} acted and recovered within {timeout:.0f}s")


async def _resolution_seconds(stack: Stack, incident_id: str) -> float | None:
    """`resolve_workload`'s time in the incident's history: ActivityTaskScheduled → ActivityTaskCompleted."""
    history = await stack.client.get_workflow_handle(incident_id).fetch_history()
    scheduled: dict[int, float] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == RESOLVE_WORKLOAD:
                scheduled[event.event_id] = event.event_time.ToNanoseconds() / 1e9
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            began = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if began is not None:
                return event.event_time.ToNanoseconds() / 1e9 - began
    return None


async def _first_sample(http: httpx.AsyncClient, prometheus: str, alertname: str, state: str, deployment: str,
                        since: float) -> float | None:
    """When Prometheus first recorded the alert in ``state`` for the deployment (or one of its pods)."""
    window = int(time.time() - since) + 5
    query = f'ALERTS{{alertname="{alertname}",alertstate="{state}",namespace="{NAMESPACE}"}}[{window}s]'
    response = await http.get(f"{prometheus}/api/v1/query", params={"query": query})
    response.raise_for_status()
    found = [float(sample[0]) for series in response.json()["data"]["result"]
             if group_value(series["metric"], WORKLOAD_GROUP) == deployment
             for sample in series["values"] if float(sample[0]) >= since - 1.0]
    return min(found) if found else None


async def _measure(stack: Stack, http: httpx.AsyncClient, prometheus: str, run: Run, group_by: list[str]) -> None:
    if run.kind.fault == "stuck-rollout":  # Kubernetes' default progress deadline is 10 minutes
        patched = await http.patch(f"{stack.sandbox_url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/"
                                   f"{run.deployment}", content=b'{"spec": {"progressDeadlineSeconds": 3}}',
                                   headers={"Content-Type": "application/merge-patch+json"})
        patched.raise_for_status()
    run.injected = time.time()
    response = await http.post(f"{stack.sandbox_url}/sandbox/v1/faults",
                               json={"kind": run.kind.fault, "namespace": NAMESPACE, "deployment": run.deployment})
    response.raise_for_status()
    ids = _incident_ids(run.kind, run.deployment, group_by)
    run.acting_alert, status = await _first_to_act(stack, ids)
    if status.detected_at is None or status.resolved_at is None:
        raise RuntimeError(f"{status.incident_id} lacks detected_at or resolved_at")
    run.detected, run.recovered = status.detected_at.timestamp(), status.resolved_at.timestamp()
    run.acted = status.actions[0].at.timestamp()
    run.pending = await _first_sample(http, prometheus, run.acting_alert, "pending", run.deployment, run.injected)
    run.fired = await _first_sample(http, prometheus, run.acting_alert, "firing", run.deployment, run.injected)
    run.resolution = await _resolution_seconds(stack, ids[run.acting_alert])


async def _settle(monitoring: SandboxMonitoring, deployments: set[str], timeout: float) -> int:
    """Wait until no alert names a benchmark deployment, so every sibling incident had its chance to act.

    Returns how many alerts still named one when the wait began."""
    deadline = time.monotonic() + timeout
    at_start: int | None = None
    async with httpx.AsyncClient(timeout=10.0) as http:
        while time.monotonic() < deadline:
            response = await http.get(f"{monitoring.alertmanager_url}/api/v2/alerts", params={"active": "true"})
            response.raise_for_status()
            naming = [a for a in response.json() if group_value(a["labels"], WORKLOAD_GROUP) in deployments]
            at_start = len(naming) if at_start is None else at_start
            if not naming:
                break
            await asyncio.sleep(1.0)
    return at_start or 0


def _plan(per_class: int) -> list[Run]:
    """Fresh deployments, the classes interleaved so the machine's noise spreads over all of them."""
    return [Run(kind, f"{kind.prefix}{i}") for i in range(per_class) for kind in CLASSES]


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    runs = _plan(1 if quick else 5)
    group_by = load_policy(policy_path).group_by
    started: list[SandboxMonitoring] = []

    def start_monitoring(stack: Stack) -> str:
        (workdir / "monitoring").mkdir(exist_ok=True)
        monitoring = SandboxMonitoring(workdir / "monitoring", sandbox_url=stack.sandbox_url,
                                       relay_url=stack.relay_url, token_file=workdir / "relay-token",
                                       hold=HOLD, window=WINDOW, interval=INTERVAL)
        started.append(monitoring)
        monitoring.start()
        if monitoring.prometheus_url is None:
            raise RuntimeError(f"Prometheus did not start; see {workdir / 'monitoring'}")
        return monitoring.prometheus_url

    began = time.monotonic()
    try:
        async with zerotouch_stack(workdir, policy_path=policy_path, sandbox_tick=0.2,
                                   monitoring=start_monitoring) as stack:
            prometheus = started[0].prometheus_url or ""
            await stack.create_deployments(NAMESPACE, [r.deployment for r in runs])
            await asyncio.sleep(5.0)  # a few scrapes and evaluations of the healthy state first
            async with httpx.AsyncClient(timeout=30.0) as http:
                for one in runs:
                    try:
                        await _measure(stack, http, prometheus, one, group_by)
                    except RuntimeError as error:
                        one.error = str(error)
            settled = time.monotonic()
            still_firing = await _settle(started[0], {r.deployment for r in runs}, timeout=120.0)
            settle_seconds = time.monotonic() - settled
            for one in runs:
                done = [a["kind"] for a in await stack.actions(namespace=NAMESPACE, name=one.deployment)
                        if a["kind"] in ACTION_KINDS]
                one.actions = len(done)
                if done and done[0] != one.kind.action and not one.error:
                    one.error = f"{done[0]} instead of {one.kind.action}"
            siblings = await _sibling_resolutions(stack, runs, group_by)
    finally:
        for monitoring in started:
            monitoring.stop()
    return _section(runs, siblings, quick=quick, settle=(settle_seconds, still_firing),
                    loop_seconds=time.monotonic() - began)


async def _sibling_resolutions(stack: Stack, runs: list[Run], group_by: list[str]) -> dict[str, list[float]]:
    """`resolve_workload` in every incident of every fault that ran it (acting or not), per alert name."""
    found: dict[str, list[float]] = {}
    for one in runs:
        for alertname, incident_id in _incident_ids(one.kind, one.deployment, group_by).items():
            with contextlib.suppress(RPCError):
                seconds = await _resolution_seconds(stack, incident_id)
                if seconds is not None:
                    found.setdefault(alertname, []).append(seconds)
    return found


def _cells(runs: list[Run], value: Any, digits: int = 2, unit: str = " s") -> list[str]:
    cells = []
    for kind in CLASSES:
        values = [v for r in runs if r.kind == kind and not r.error for v in [value(r)] if v is not None]
        cells.append(spread(values, digits, unit))
    return cells


def _acting(runs: list[Run], kind: FaultClass) -> str:
    names = [r.acting_alert for r in runs if r.kind == kind]
    return ", ".join(f"{name} ({names.count(name)})" for name in sorted(set(names))) or "—"


def _section(runs: list[Run], siblings: dict[str, list[float]], *, quick: bool, settle: tuple[float, int],
             loop_seconds: float) -> Section:
    ok = [r for r in runs if not r.error]
    exact = [r for r in runs if r.actions == 1 and not r.error]
    per_class = len(runs) // len(CLASSES)
    table = [
        ["phase", *(f"`{k.fault}` → {k.action}" for k in CLASSES)],
        ["detection: fault → rule pending (scrape + evaluation, 1 s each)",
         *_cells(runs, lambda r: None if r.pending is None else r.pending - r.injected)],
        [f"detection: pending → firing (the rule's `for: {HOLD}`)",
         *_cells(runs, lambda r: None if r.pending is None or r.fired is None else r.fired - r.pending)],
        ["detection: firing → incident has the alert (Alertmanager, relay)",
         *_cells(runs, lambda r: None if r.fired is None else r.detected - r.fired)],
        ["detection: fault → incident has the alert", *_cells(runs, lambda r: r.detected - r.injected)],
        ["zerotouch: alert → first action", *_cells(runs, lambda r: r.acted - r.detected)],
        ["of which owner resolution (`resolve_workload`), when the acting incident ran it",
         *_cells(runs, lambda r: None if r.resolution is None else 1000 * r.resolution, 0, " ms")],
        ["owner resolution's share of alert → action",
         *_cells(runs, lambda r: None if r.resolution is None else 100 * r.resolution / (r.acted - r.detected),
                 0, "%")],
        ["zerotouch: action → verified (includes the 2 s hold)", *_cells(runs, lambda r: r.recovered - r.acted)],
        ["zerotouch share (alert → verified)", *_cells(runs, lambda r: r.recovered - r.detected)],
        ["MTTR: fault → verified recovery", *_cells(runs, lambda r: r.recovered - r.injected)],
        ["acting incident's alert", *(_acting(ok, kind) for kind in CLASSES)],
        ["actions on the deployment (goal: exactly 1)",
         *(", ".join(str(r.actions) for r in runs if r.kind == k) for k in CLASSES)],
    ]
    resolutions = [["incidents of alert", "ran `resolve_workload`", "duration median (min-max)"]]
    resolutions += [[name, str(len(values)), spread([1000 * v for v in values], 0, " ms")]
                    for name, values in sorted(siblings.items())]
    all_resolutions = [v for values in siblings.values() for v in values]
    goals = [Goal("exactly one action per fault", len(exact) == len(runs),
                  f"{len(exact)}/{len(runs)} faults")]
    for kind in CLASSES:
        mine = [r for r in ok if r.kind == kind]
        if mine:
            mttr = median([r.recovered - r.injected for r in mine])
            detection = median([r.detected - r.injected for r in mine])
            goals.append(Goal(f"`{kind.fault}` MTTR p50 (no bar)", None,
                              f"{mttr:.1f} s (detection {detection:.1f} s, zerotouch "
                              f"{median([r.recovered - r.detected for r in mine]):.1f} s)"))
    shares = [100 * r.resolution / (r.acted - r.detected) for r in ok if r.resolution is not None]
    if all_resolutions:
        share = f"{median(shares):.0f}% of alert → action" if shares else "no acting incident ran it"
        goals.append(Goal("owner resolution per incident (no bar)", None,
                          f"{1000 * median(all_resolutions):.0f} ms; {share} where the acting incident ran it"))
    notes = [f"Run failed: {r.deployment} ({r.kind.fault}): {r.error}" for r in runs if r.error]
    notes.append(f"After the last fault {settle[1]} alert(s) in Alertmanager still named a benchmark deployment; the "
                 f"scenario waited {settle[0]:.0f} s until none did, then counted the actions the sandbox recorded "
                 "per deployment.")
    notes.append(f"Faults and measurement: {loop_seconds:.0f} s including the stack's start.")
    return Section(
        title="5b. Full loop with the stock kube-prometheus rules",
        how=(f"{per_class} run{'s' if per_class > 1 else ''} per fault class, each on a fresh one-replica Deployment, "
             "the classes interleaved, one fault at a time: fault injected into the sandbox → Debian's Prometheus "
             "scraping the sandbox's exporter pages as kube-prometheus scrapes a cluster, evaluating the vendored "
             f"kube-prometheus rules with every `for:` shortened to {HOLD} and range windows to {WINDOW} "
             f"(`embedded/sandbox_monitoring.py`; scrape and evaluation every {INTERVAL}) → Alertmanager grouping "
             "by `namespace` as kube-prometheus ships it (`group_wait: 1s`, `group_interval: 1s`) → relay → "
             "incident per (alertname, namespace, workload) → owner resolution for pod-only alerts → one action → "
             "verification (rollout health and the runbook's PromQL holding 2 s). The policy is scenario 5's with "
             f"the per-target cooldown at {TARGET_COOLDOWN}: several stock alerts fire for one fault and the first "
             "incident to act is the one timed; the cooldown keeps the others from acting. `stuck-rollout` "
             "first sets the Deployment's `progressDeadlineSeconds` to 3. Times: *pending* and *firing* are the "
             "first samples of Prometheus's `ALERTS` series for the acting alert (firing = the `startsAt` "
             "Alertmanager receives); *incident has the alert* is its `detected_at`; the action is its first "
             "action record; verified is `resolved_at`; owner resolution is `resolve_workload`'s "
             "ActivityTaskScheduled → ActivityTaskCompleted in the incident's history."),
        table=table,
        goals=goals,
        notes=notes,
        more=[("Owner resolution in every incident of these faults that ran it (acting or not):", resolutions)],
        data={"runs": [vars(r) | {"kind": r.kind.fault} for r in runs], "quick": quick},
    )
