"""Watching a drill: what zerotouch did after the fault, measured from its incidents and the sandbox.

Time to detect is the incident's own detection time; time to first action the first write in the
sandbox's action log after injection (whoever made it); time to verified recovery the moment the
incident says resolved and the sandbox no longer holds the fault. Every write after injection that
does not touch the drill's target is reported as outside it (the blast-radius check). A delete_pod
drill recovers when its Deployment has every desired replica Ready again (drill_pods.py): Kubernetes
itself heals it, so the drill expects zerotouch to take no action.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.drill_failover_watch import FAILOVERS, failover_actions, failover_as_incident
from activities.drill_pods import DrillPods
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.drill_models import DRILL_LEDGER_KIND, DrillObservation, DrillResult, DrillWatch, ExercisedRunbook
from zerotouch.drills import CLUSTER_FAULT, FALSE_POSITIVES, NODE_FAULT, POSTGRES_FAULT, POSTGRES_TARGET, Drill
from zerotouch.ledger_models import LedgerReceipt, LedgerRecord
from zerotouch.ledger_store import LedgerStore
from zerotouch.models import IncidentState, IncidentStatus
from zerotouch.names import QUERY_STATUS
from zerotouch.recovery import QUERY_RECOVERY_STATUS, RecoveryStatus, recovery_id

POLL_SECONDS = 0.5
# A failed drill's incidents may still be triaging at its deadline: wait this long for their runbook.
RUNBOOK_GRACE_SECONDS = 15.0
RESOLVED = ("resolved", "closed")
# The runbook a node recovery asks the Governor's grants under (workflows/node_recovery/governor.py RUNBOOK).
NODE_RECOVERY_RUNBOOK = "node-recovery"
NODE_RECOVERIES = recovery_id("node") + "-"
# A node recovery's stage as an incident's state: recovered counts as resolved, a refusal as an escalation.
RECOVERY_STATES: dict[str, IncidentState] = {
    "planning": "open", "awaiting_approval": "awaiting_approval", "running": "remediating", "recovered": "resolved",
    "refused": "escalated", "failed": "escalated", "aborted": "aborted", "planned": "closed"}


def in_target(drill: Drill, action: dict[str, Any]) -> bool:
    """Whether a sandbox write touched the drill's target: the workload and what it owns (pods named
    after it, its Jobs), or the node and the evictions that drain it."""
    name = str(action.get("name") or "")
    if drill.fault == POSTGRES_FAULT:  # the failover's own steps (drill_failover_watch.failover_actions)
        return action.get("resource") == POSTGRES_TARGET and name == drill.target_name
    if drill.fault == NODE_FAULT:
        return (action.get("resource") == "nodes" and name == drill.target_name) or action.get("kind") == "evict"
    if action.get("namespace") != drill.namespace:
        return False
    return name == drill.target_name or name.startswith(drill.target_name + "-") or action.get("resource") == "jobs"


def as_incident(workflow_id: str, recovery: RecoveryStatus) -> IncidentStatus:
    """A node recovery seen as the drill sees an incident: detected when it started, resolved when recovered."""
    times = [event.at for event in recovery.timeline]
    return IncidentStatus(
        incident_id=workflow_id, state=RECOVERY_STATES[recovery.stage], runbook=NODE_RECOVERY_RUNBOOK,
        target=recovery.target, detected_at=times[0] if times else None,
        resolved_at=times[-1] if times and recovery.stage == "recovered" else None,
        labels={"alertname": recovery.reason or "NodeRecovery", "node": recovery.target})


def note_runbooks(observed: DrillObservation, statuses: list[IncidentStatus]) -> None:
    """Add the runbooks these incidents chose (with their alert class) to what the drill exercised."""
    for status in statuses:
        if status.runbook:
            found = ExercisedRunbook(runbook=status.runbook, alert_class=status.labels.get("alertname", ""))
            if found not in observed.exercised:
                observed.exercised.append(found)


def describe(action: dict[str, Any]) -> str:
    where = f"{action.get('namespace')}/{action.get('name')}" if action.get("namespace") else str(action.get("name"))
    return f"{action.get('kind')} {action.get('resource')} {where}"


class DrillWatchActivities:
    def __init__(self, *, client: Client, sandbox_url: str | None, http: httpx.AsyncClient,
                 pods: DrillPods | None = None) -> None:
        self._client = client
        self._sandbox = sandbox_url.rstrip("/") if sandbox_url else None
        self._http = http
        self._pods = pods

    async def _pod_replaced(self, watch: DrillWatch, observed: DrillObservation,
                            statuses: list[IncidentStatus]) -> bool:
        """delete_pod recovers when its Deployment has every desired replica Ready again. Kubernetes heals
        this by itself, so it is auto_resolved only if zerotouch took no action; `acted` otherwise."""
        if self._pods is None:
            raise errors.fail("delete_pod drills need a Kubernetes client; this worker was built without one",
                              errors.INVALID_TARGET)
        back, state = await asyncio.to_thread(self._pods.recovered, watch.drill)
        observed.detail = f"{watch.injection.detail}; {state}"  # which pod went, and how far it came back
        if not back:
            return False
        observed.recover_seconds = max(0.0, time.time() - watch.injection.injected_at)
        acted = observed.actions + [f"{a.action} {a.target}" for s in statuses for a in s.actions]
        observed.outcome = "acted" if acted else "auto_resolved"
        if acted:
            observed.detail += f"; zerotouch acted on a pod Kubernetes replaces by itself: {', '.join(acted)}"
        return True

    async def _statuses(self, incident_ids: list[str]) -> list[IncidentStatus]:
        found = []
        for incident_id in incident_ids:
            try:
                handle = self._client.get_workflow_handle(incident_id)
                if incident_id.startswith(FAILOVERS):
                    raw = await handle.query(QUERY_RECOVERY_STATUS)  # None while it loads its policy
                    found.extend([failover_as_incident(incident_id, RecoveryStatus.model_validate(raw))] if raw else [])
                elif incident_id.startswith(NODE_RECOVERIES):  # a node recovery has no `status`, but its own
                    recovery = await handle.query(QUERY_RECOVERY_STATUS, result_type=RecoveryStatus)
                    found.append(as_incident(incident_id, recovery))
                else:
                    found.append(await handle.query(QUERY_STATUS, result_type=IncidentStatus))
            except (RPCError, WorkflowQueryFailedError):
                continue  # not started yet (or never: a heartbeat opens nothing; a recovery has no `status`)
        return found

    async def _actions(self, after: int) -> list[dict[str, Any]]:
        if self._sandbox is None:
            return []
        answer = await self._http.get(f"{self._sandbox}/sandbox/v1/actions")
        return [a for a in answer.json().get("actions", []) if int(a.get("seq", 0)) > after]

    async def _failover_actions(self, ids: list[str]) -> list[dict[str, Any]]:
        try:
            raw = await self._client.get_workflow_handle(ids[0]).query(QUERY_RECOVERY_STATUS)
        except (RPCError, WorkflowQueryFailedError, IndexError):
            return []
        return failover_actions(RecoveryStatus.model_validate(raw)) if raw else []

    async def _fault_gone(self, drill: Drill) -> bool:
        if drill.fault == POSTGRES_FAULT:
            return True  # resolved only once the failover verified a write on the promoted replica
        if self._sandbox is None or drill.fault in FALSE_POSITIVES:
            return True
        if drill.fault == NODE_FAULT:
            node = await self._http.get(f"{self._sandbox}/sandbox/v1/nodes/{quote(drill.target_name, safe='')}")
            return bool(node.json().get("ready") == "True")
        active = (await self._http.get(f"{self._sandbox}/sandbox/v1/faults")).json().get("active", [])
        return not any(f["namespace"] == drill.namespace and f["deployment"] == drill.target_name for f in active)

    @activity.defn(name=names.WATCH_DRILL)
    async def watch_drill(self, watch: DrillWatch) -> DrillObservation:
        """Poll the incidents and the sandbox until the drill's expectation is met, missed, or out of time"""
        observed = await self._watch(watch)
        if observed.outcome != watch.drill.expect and observed.incident_ids and not observed.exercised:
            # The failure costs the runbook its incident chose trust: give triage a moment to choose.
            until = time.time() + RUNBOOK_GRACE_SECONDS
            while not observed.exercised and time.time() < until:
                activity.heartbeat()
                await asyncio.sleep(POLL_SECONDS)
                note_runbooks(observed, await self._statuses(observed.incident_ids))
        return observed

    async def _watch(self, watch: DrillWatch) -> DrillObservation:
        drill, start = watch.drill, watch.injection.injected_at
        ids = list(watch.incident_ids)
        if not watch.delivered and drill.fault in (NODE_FAULT, POSTGRES_FAULT):  # the relay starts its recovery
            ids = [recovery_id("node" if drill.fault == NODE_FAULT else "database", watch.cluster, drill.target_name)]
        elif not watch.delivered and drill.alert is not None:  # Prometheus delivers it: the relay's key
            labels = {"alertname": drill.alert.alertname, **drill.alert.labels}
            event = AlertEvent(fingerprint="drill", status="firing", labels=labels, starts_at=datetime.now(UTC))
            ids = [incident_id_for(event, watch.group_by, watch.cluster)]
        observed = DrillObservation(outcome="undetected", incident_ids=ids)
        until = start + (drill.quiet_for if drill.expect == "no_action" else drill.deadline).total_seconds()
        while True:
            activity.heartbeat()
            statuses = await self._statuses(ids)
            note_runbooks(observed, statuses)
            actions = await (self._failover_actions(ids) if drill.fault == POSTGRES_FAULT
                             else self._actions(watch.injection.actions_before))
            detected = [s.detected_at.timestamp() for s in statuses if s.detected_at is not None]
            if detected and observed.detect_seconds is None:
                observed.detect_seconds = max(0.0, min(detected) - start)
            if actions and observed.first_action_seconds is None:
                observed.first_action_seconds = max(0.0, float(actions[0]["timestamp"]) - start)
            observed.actions = [describe(a) for a in actions]
            observed.outside_target = [describe(a) for a in actions if not in_target(drill, a)]
            states = {s.state for s in statuses}
            if drill.expect == "no_action" and actions:
                observed.outcome, observed.detail = "acted", f"{len(actions)} write(s) for a false positive"
                return observed
            if "escalated" in states:
                observed.outcome = "escalated"
                return observed
            if drill.fault == CLUSTER_FAULT:
                if await self._pod_replaced(watch, observed, statuses):
                    return observed
            elif statuses and states <= set(RESOLVED) and await self._fault_gone(drill):
                stamps = [s.resolved_at.timestamp() for s in statuses if s.resolved_at is not None]
                observed.recover_seconds = max(0.0, (max(stamps) if stamps else time.time()) - start)
                observed.outcome = "auto_resolved" if observed.first_action_seconds is not None else "no_action"
                if drill.expect != "no_action":
                    return observed
            if time.time() >= until:
                if drill.expect == "no_action":
                    observed.outcome = "no_action"
                elif statuses or drill.fault == CLUSTER_FAULT:
                    observed.outcome = "unresolved"
                pods = f"; {observed.detail}" if drill.fault == CLUSTER_FAULT else ""
                observed.detail = f"states at the deadline: {sorted(states) or 'no incident'}{pods}"
                return observed
            await asyncio.sleep(POLL_SECONDS)


def drill_record(result: DrillResult, *, recorded_at: datetime) -> LedgerRecord:
    """A drill in the ledger: `drill report` reads these back (kind `drill`, the result as evidence)."""
    lines = [f"# Drill {result.name}: {'passed' if result.passed else 'FAILED'}", "",
             f"{result.fault} on {result.target}; expected {result.expect}, got {result.outcome}.", "",
             f"- detect {result.detect_seconds}s, first action {result.first_action_seconds}s, "
             f"recovered {result.recover_seconds}s",
             f"- actions: {', '.join(result.actions) or 'none'}",
             f"- outside the target: {', '.join(result.outside_target) or 'none'}",
             f"- fault removed: {result.cleaned_up}", *([f"- {result.detail}"] if result.detail else [])]
    return LedgerRecord(
        incident_id=result.workflow_id, run_id=result.run_id, recorded_at=recorded_at,
        outcome="resolved" if result.passed else "escalated", root_cause_class=result.fault,
        target=result.target, closed_at=result.finished_at, kind=DRILL_LEDGER_KIND, automated=True,
        mttr_seconds=result.recover_seconds, mttd_seconds=result.detect_seconds,
        evidence=result.model_dump(mode="json"), postmortem="\n".join(lines),
    )


class DrillLedgerActivities:
    def __init__(self, *, store: LedgerStore) -> None:
        self._store = store

    @activity.defn(name=names.APPEND_DRILL_RECORD)
    def append_drill_record(self, result: DrillResult) -> LedgerReceipt:
        """Append a drill's result to the ledger (idempotent by workflow and run)"""
        return self._store.append(drill_record(result, recorded_at=datetime.now(UTC)))
