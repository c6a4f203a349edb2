"""What reaches Temporal: one incident per key, every delivery a signal, nothing for stray resolutions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from starters.fire import FireError, fire_alert
from starters.relay.app import create_app
from starters.relay.config import RelayConfig
from starters.relay.deliver import TemporalRejected, TemporalUnavailable, _classify
from tests.relay.conftest import (
    AUTH,
    TOKEN,
    alert,
    count_incidents,
    eventually,
    payload,
    signals_of,
    unique_alertname,
)
from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.binaries import temporal_cli
from zerotouch.models import IncidentInput
from zerotouch.names import SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED
from zerotouch.policy import Policy
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter

Relay = Callable[..., Any]


async def test_repeated_delivery_makes_one_incident_with_every_signal(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    body = payload(alert(unique_alertname(), namespace="shop", deployment="web"))
    async with relay(absorb_repeats_seconds=0) as (_, http):  # every delivery told: the race below is Temporal's
        # Concurrent repeats race on the same workflow ID: USE_EXISTING must absorb them all.
        answers = await asyncio.gather(*(http.post("/alertmanager", json=body, headers=AUTH) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    incident_ids = {a.json()["incidents"][0] for a in answers}
    assert len(incident_ids) == 1
    incident_id = incident_ids.pop()
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), 1) == 1
    assert await signals_of(dev_env.client, incident_id) == [SIGNAL_ALERT_FIRED] * 5

    description = await dev_env.client.get_workflow_handle(incident_id).describe()
    assert description.task_queue == task_queue
    assert await description.static_summary() == f"{body['alerts'][0]['labels']['alertname']} shop/web"
    handle = dev_env.client.get_workflow_handle(incident_id)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (start_input,) = data_converter().payload_converter.from_payloads(started.input.payloads, [IncidentInput])
    assert start_input == IncidentInput(incident_id=incident_id)


async def test_identical_deliveries_are_told_once_and_a_change_goes_through(
    relay: Relay, dev_env: WorkflowEnvironment
) -> None:
    name = unique_alertname()
    firing = payload(alert(name, namespace="shop", deployment="web"))
    async with relay() as (_, http):
        # HA Alertmanager replicas and duplicate receivers: the same alert at once, then again.
        answers = await asyncio.gather(*(http.post("/alertmanager", json=firing, headers=AUTH) for _ in range(5)))
        answers.append(await http.post("/alertmanager", json=firing, headers=AUTH))
        assert [a.status_code for a in answers] == [200] * 6
        (incident_id,) = {a.json()["incidents"][0] for a in answers}  # every answer names the incident
        assert await signals_of(dev_env.client, incident_id) == [SIGNAL_ALERT_FIRED]
        # A flap is news: resolved, then firing again, each reaches the incident.
        for status in ("resolved", "firing"):
            sent = await http.post("/alertmanager", json=payload(alert(name, status, namespace="shop",
                                                                        deployment="web")), headers=AUTH)
            assert sent.status_code == 200
        assert await signals_of(dev_env.client, incident_id) == [
            SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED, SIGNAL_ALERT_FIRED]


async def test_hundred_alerts_in_one_payload_start_hundred_incidents(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    name = unique_alertname()
    body = payload(*(alert(name, namespace="shop", deployment=f"web-{i}") for i in range(100)))
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 100
    assert len(set(answer.json()["incidents"])) == 100
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), 100) == 100


async def test_alerts_sharing_the_group_labels_join_one_incident(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    name = unique_alertname()
    body = payload(alert(name, namespace="shop", deployment="web", pod="web-1"),
                   alert(name, namespace="shop", deployment="web", pod="web-2"))
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=body, headers=AUTH)
    assert answer.json() == {"accepted": 2, "incidents": [answer.json()["incidents"][0]], "heartbeats": 0}
    assert await signals_of(dev_env.client, answer.json()["incidents"][0]) == [SIGNAL_ALERT_FIRED] * 2


async def test_pods_of_one_deployment_join_one_incident_and_a_prefix_sharer_does_not(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    name = unique_alertname()
    scrape = {"job": "kube-state-metrics", "service": "kube-state-metrics", "instance": "10.0.0.7:8443"}
    body = payload(alert(name, namespace="shop", pod="web-7d9c5fb8d4-x2kqz", **scrape),
                   alert(name, namespace="shop", pod="web-7d9c5fb8d4-b5lmn", **scrape),
                   alert(name, namespace="shop", pod="web-api-6f8b9c7d5b-qwrtz", **scrape))
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    web, web_api = answer.json()["incidents"]
    assert await signals_of(dev_env.client, web) == [SIGNAL_ALERT_FIRED] * 2
    assert await signals_of(dev_env.client, web_api) == [SIGNAL_ALERT_FIRED]
    description = await dev_env.client.get_workflow_handle(web).describe()
    assert await description.static_summary() == f"{name} shop/web"


async def test_always_firing_heartbeats_are_accepted_and_open_nothing(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    body = payload(alert("Watchdog", severity="none", namespace="monitoring"),
                   alert("InfoInhibitor", severity="none", namespace="shop"))
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=body, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 2, "incidents": [], "heartbeats": 2}
    assert await count_incidents(dev_env.client, task_queue) == 0


async def test_resolved_alert_without_incident_opens_nothing(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    resolved = alert(unique_alertname(), status="resolved", namespace="shop", deployment="web")
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=payload(resolved), headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 1, "incidents": [], "heartbeats": 0}
    incident_id = _incident_id(resolved)
    with pytest.raises(RPCError) as raised:
        await dev_env.client.get_workflow_handle(incident_id).describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND
    assert await count_incidents(dev_env.client, task_queue) == 0


async def test_resolved_after_firing_signals_the_same_incident(relay: Relay, dev_env: WorkflowEnvironment) -> None:
    name = unique_alertname()
    async with relay() as (_, http):
        fired = await http.post("/alertmanager", json=payload(alert(name, deployment="api")), headers=AUTH)
        resolved = await http.post("/alertmanager", json=payload(alert(name, "resolved", deployment="api")),
                                   headers=AUTH)
    assert fired.status_code == resolved.status_code == 200
    assert fired.json()["incidents"] == resolved.json()["incidents"]
    assert await signals_of(dev_env.client, fired.json()["incidents"][0]) == [SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED]


async def test_fire_then_resolve_in_one_payload_arrive_in_order(relay: Relay, dev_env: WorkflowEnvironment) -> None:
    name = unique_alertname()
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", json=payload(alert(name), alert(name, "resolved")), headers=AUTH)
    assert await signals_of(dev_env.client, answer.json()["incidents"][0]) == [SIGNAL_ALERT_FIRED,
                                                                                 SIGNAL_ALERT_RESOLVED]


async def test_unreachable_temporal_answers_503_with_retry_after() -> None:
    doomed = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), port=free_port(), data_converter=data_converter()
    )
    running = True
    try:
        app = create_app(client=doomed.client, config=RelayConfig(token=TOKEN, temporal_timeout_seconds=3))
        await doomed.shutdown()
        running = False
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
            answer = await http.post("/alertmanager", json=payload(alert(unique_alertname())), headers=AUTH)
            health = await http.get("/healthz")
    finally:
        if running:
            await doomed.shutdown()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert "retry later" in answer.json()["detail"]
    assert health.status_code == 503
    assert health.json() == {"status": "ok", "temporal": "unreachable"}


async def test_fire_alert_opens_an_incident(relay: Relay, dev_env: WorkflowEnvironment, task_queue: str) -> None:
    name = unique_alertname()
    async with relay() as (server, _):
        # fire_alert is blocking (it serves the CLI): run it off the loop that serves the relay.
        result = await asyncio.to_thread(fire_alert, server.url, TOKEN, name, {"namespace": "shop"},
                                         {"summary": "by hand"}, False)
        resolved = await asyncio.to_thread(fire_alert, server.url + "/alertmanager", TOKEN, name,
                                           {"namespace": "shop"}, {}, True)
        with pytest.raises(FireError, match="401"):
            await asyncio.to_thread(fire_alert, server.url, "wrong", name, {}, {}, False)
    assert result["accepted"] == 1
    (incident_id,) = result["incidents"]
    assert resolved["incidents"] == [incident_id]
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), 1) == 1
    assert await signals_of(dev_env.client, incident_id) == [SIGNAL_ALERT_FIRED, SIGNAL_ALERT_RESOLVED]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(RPCStatusCode.UNAVAILABLE, TemporalUnavailable), (RPCStatusCode.DEADLINE_EXCEEDED, TemporalUnavailable),
     (RPCStatusCode.INVALID_ARGUMENT, TemporalRejected), (RPCStatusCode.PERMISSION_DENIED, TemporalRejected)],
)
def test_temporal_errors_split_into_retry_later_and_refused(status: RPCStatusCode, expected: type) -> None:
    # An UNAVAILABLE from the SDK takes ~10 s of its own retries to surface; classify it directly.
    assert isinstance(_classify(RPCError("boom", status, b"")), expected)


def test_fire_alert_without_relay_says_so() -> None:
    with pytest.raises(FireError, match="cannot reach the relay"):
        fire_alert(f"http://127.0.0.1:{free_port()}", None, "X", {}, {}, False, timeout=2)


def _incident_id(raw_alert: dict[str, Any]) -> str:
    event = AlertEvent(fingerprint="", status=raw_alert["status"], labels=raw_alert["labels"],
                       starts_at=raw_alert["startsAt"])
    return incident_id_for(event, Policy().group_by)


def test_the_same_alert_from_two_cluster_scopes_is_two_incidents() -> None:
    event = AlertEvent(fingerprint="", status="firing", starts_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
                       labels={"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web"})
    group_by = Policy().group_by
    unscoped, east, west = (incident_id_for(event, group_by, cluster) for cluster in ("", "east", "west"))
    assert len({unscoped, east, west}) == 3
    assert east.startswith("incident-east-KubePodCrashLooping-shop-web-")
    assert unscoped == incident_id_for(event, group_by), "the default scope keeps its IDs"
