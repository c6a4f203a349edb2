"""A drill's fault and its alert: put in, taken out, delivered as Alertmanager would.

The sandbox's own routes do the breaking (`/sandbox/v1/faults`, `/sandbox/v1/nodes/<name>/fail`);
both are idempotent (a fault re-injected replaces itself, a clear of nothing clears nothing), so a
retried activity never breaks twice. A real cluster takes only `delete_pod`: one pod of the
selected workload, which its ReplicaSet recreates.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity

from activities.drill_pods import DrillPods, PodChoice
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.alerts import fingerprint_of
from zerotouch.drill_models import DrillDelivered, DrillDelivery, DrillFault, DrillInjection
from zerotouch.drills import CLUSTER_FAULT, FALSE_POSITIVES, NODE_FAULT, Drill, sandbox_kind

Relay = tuple[str, str]  # URL, bearer token
STORM_DELIVERIES = 20
FLAP_SECONDS = 2.0


def relay_of_state_dir(state_dir: Path) -> Callable[[], Relay | None]:
    """The relay `zerotouch up` wrote into its state directory (endpoints.json, relay-token); read
    at each call, since the workers start before the relay writes its endpoint."""

    def find() -> Relay | None:
        try:
            url = json.loads((state_dir / "endpoints.json").read_text()).get("relay")
            token = (state_dir / "relay-token").read_text().strip()
        except (OSError, ValueError):
            return None
        return (str(url), token) if url else None

    return find


def _webhook(drill: Drill, status: str, starts_at: datetime) -> dict[str, Any]:
    assert drill.alert is not None
    labels = {"alertname": drill.alert.alertname, **drill.alert.labels, "zerotouch_drill": drill.name}
    alert = {"status": status, "labels": labels, "annotations": {"summary": f"drill {drill.name}"},
             "startsAt": starts_at.isoformat(), "fingerprint": fingerprint_of(labels)}
    if status == "resolved":
        alert["endsAt"] = datetime.now(UTC).isoformat()
    return {"version": "4", "status": status, "receiver": "zerotouch", "groupLabels": {}, "commonLabels": labels,
            "commonAnnotations": {}, "externalURL": "", "groupKey": f"drill/{drill.name}", "alerts": [alert]}


def _drill_id() -> str:
    """The drill's workflow ID: what marks its pod, the same for every attempt of every activity of it."""
    workflow_id = activity.info().workflow_id
    if not workflow_id:
        raise errors.fail("a drill's activity runs inside its DrillWorkflow", errors.INVALID_PARAMS)
    return workflow_id


class DrillFaultActivities:
    def __init__(self, *, sandbox_url: str | None, relay: Callable[[], Relay | None], pods: DrillPods | None = None,
                 http: httpx.AsyncClient) -> None:
        self._sandbox = sandbox_url.rstrip("/") if sandbox_url else None
        self._pods = pods
        self._relay = relay
        self._http = http
        self._starts: dict[str, datetime] = {}  # drill → its alert's startsAt, so repeats are one alert

    def _sandbox_url(self, drill: Drill) -> str:
        if self._sandbox is None:
            raise errors.fail(f"drill {drill.name}: {drill.fault} needs the sandbox cluster; this worker talks "
                              "to a real cluster (there only delete_pod runs)", errors.INVALID_TARGET)
        return self._sandbox

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._http.post(url, json=body)
        except httpx.HTTPError as error:
            raise errors.fail(f"sandbox unreachable: {error}", errors.API_UNAVAILABLE) from None
        data: dict[str, Any] = answer.json()
        if answer.status_code >= 400:
            raise errors.fail(f"the sandbox refused: {data.get('error')}", errors.INVALID_TARGET)
        return data

    async def _last_action(self, base: str) -> int:
        answer = await self._http.get(f"{base}/sandbox/v1/actions", params={"include_failed": "true"})
        actions: list[dict[str, Any]] = answer.json().get("actions", [])
        return max((int(a.get("seq", 0)) for a in actions), default=0)

    @activity.defn(name=names.INJECT_DRILL_FAULT)
    async def inject_drill_fault(self, fault: DrillFault) -> DrillInjection:
        """Break the drill's target: a sandbox fault, a node NotReady, or nothing (false positives)"""
        drill = fault.drill
        if drill.fault == CLUSTER_FAULT:
            return await self._delete_pod(drill)
        base = self._sandbox_url(drill) if drill.fault not in FALSE_POSITIVES or self._sandbox else ""
        before = await self._last_action(base) if base else 0
        if drill.fault in FALSE_POSITIVES:
            return DrillInjection(injected_at=time.time(), actions_before=before, detail="no fault: a false positive")
        if drill.fault == NODE_FAULT:
            await self._post(f"{base}/sandbox/v1/nodes/{quote(drill.target_name, safe='')}/fail",
                             {"mode": "NotReady"})
            return DrillInjection(injected_at=time.time(), actions_before=before,
                                  detail=f"node {drill.target_name} NotReady")
        namespace, _, name = drill.target.partition("/")
        await self._post(f"{base}/sandbox/v1/faults",
                         {"kind": sandbox_kind(drill.fault), "namespace": namespace, "deployment": name})
        return DrillInjection(injected_at=time.time(), actions_before=before,
                              detail=f"{sandbox_kind(drill.fault)} on {drill.target}")

    def _drill_pods(self) -> DrillPods:
        if self._pods is None:
            raise errors.fail("delete_pod drills need a Kubernetes client; this worker was built without one",
                              errors.INVALID_TARGET)
        return self._pods

    async def _delete_pod(self, drill: Drill) -> DrillInjection:
        """One pod of the target Deployment deleted, once per drill however often this activity is retried."""
        pods, info, drill_id = self._drill_pods(), activity.info(), _drill_id()
        choice = PodChoice.of(info.heartbeat_details[0] if info.heartbeat_details else None)
        if choice is None:
            since = info.scheduled_time if info.attempt > 1 else None
            choice = await asyncio.to_thread(pods.choose, drill, drill_id=drill_id, since=since)
        activity.heartbeat(choice.details())  # before the delete: a retry deletes this pod or none
        deleted = await asyncio.to_thread(pods.delete, drill, choice, drill_id=drill_id)
        injected_at = choice.created if choice.replacement else time.time()
        before = await self._last_action(self._sandbox) if self._sandbox else 0  # after its own writes
        where = f"{drill.namespace}/{choice.name}"
        detail = (f"deleted pod {where} (uid {choice.uid}) of {choice.workload}; its ReplicaSet recreates it"
                  if deleted else f"pod of {choice.workload} deleted by an earlier attempt "
                  f"({'replacement' if choice.replacement else 'chosen'}: {where}); nothing more deleted")
        activity.logger.info("drill %s: %s", drill.name, detail)
        return DrillInjection(injected_at=injected_at, actions_before=before, detail=detail)

    @activity.defn(name=names.REMOVE_DRILL_FAULT)
    async def remove_drill_fault(self, fault: DrillFault) -> bool:
        """Take the drill's fault out again (whatever zerotouch did); True when something was removed"""
        drill = fault.drill
        if drill.fault == CLUSTER_FAULT:  # a deleted pod is back by its ReplicaSet's hand; only a mark may be left
            return await asyncio.to_thread(self._drill_pods().unmark, drill, drill_id=_drill_id()) > 0
        if drill.fault in FALSE_POSITIVES:
            return False  # nothing was put in
        base = self._sandbox_url(drill)
        if drill.fault == NODE_FAULT:
            await self._post(f"{base}/sandbox/v1/nodes/{quote(drill.target_name, safe='')}/fail", {"mode": "Ready"})
            return True
        namespace, _, name = drill.target.partition("/")
        try:
            answer = await self._http.delete(f"{base}/sandbox/v1/faults",
                                             params={"namespace": namespace, "deployment": name})
        except httpx.HTTPError as error:
            raise errors.fail(f"sandbox unreachable: {error}", errors.API_UNAVAILABLE) from None
        answer.raise_for_status()
        return int(answer.json().get("cleared", 0)) > 0

    @activity.defn(name=names.DELIVER_DRILL_ALERT)
    async def deliver_drill_alert(self, delivery: DrillDelivery) -> DrillDelivered:
        """POST the drill's alert to the relay's webhook as Alertmanager would (a flap, a storm: as declared)"""
        drill = delivery.drill
        relay = self._relay()
        if drill.alert is None:
            return DrillDelivered()
        if relay is None:
            raise errors.fail("no relay to deliver the drill's alert to (no endpoints.json in the state dir); "
                              "run `zerotouch up` or set drills.deliver_alerts: false", errors.INVALID_TARGET)
        starts = self._starts.setdefault(drill.name, datetime.now(UTC))
        if delivery.resolved:
            sends = [(_webhook(drill, "resolved", starts), 0.0)]
            self._starts.pop(drill.name, None)
        elif drill.fault == "flapping_alert":
            sends = [(_webhook(drill, "firing", starts), FLAP_SECONDS), (_webhook(drill, "resolved", starts), 0.0)]
        elif drill.fault == "duplicate_storm":
            sends = [(_webhook(drill, "firing", starts), 0.0)] * STORM_DELIVERIES
        else:
            sends = [(_webhook(drill, "firing", starts), 0.0)]
        url, token = relay
        incidents: list[str] = []
        if drill.fault == "duplicate_storm" and not delivery.resolved:
            answers = await asyncio.gather(*(self._send(url, token, body) for body, _ in sends))
        else:
            answers = []
            for body, pause in sends:
                answers.append(await self._send(url, token, body))
                await asyncio.sleep(pause)
        for answer in answers:
            incidents += [i for i in answer.get("incidents", []) if i not in incidents]
        return DrillDelivered(incident_ids=incidents, deliveries=len(sends))

    async def _send(self, url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._http.post(f"{url.rstrip('/')}/alertmanager", json=body,
                                           headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            raise errors.fail(f"relay unreachable: {error}", errors.API_UNAVAILABLE) from None
        if answer.status_code >= 500:
            raise errors.fail(f"relay answered {answer.status_code}", errors.API_UNAVAILABLE)
        if answer.status_code >= 400:
            raise errors.fail(f"relay refused the drill's alert: {answer.text[:300]}", errors.INVALID)
        data: dict[str, Any] = answer.json()
        return data
