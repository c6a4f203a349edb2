"""Alertmanager groups of thousands of alerts: accepted whole, delivered across retries, never a 4xx for size alone."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from starters.relay.app import create_app
from starters.relay.config import DEFAULT_MAX_BODY_BYTES, RelayConfig
from starters.relay.deliver import CatchUp, GroupProgress
from tests.relay.conftest import AUTH, TOKEN, alert, count_incidents, eventually, payload, unique_alertname
from zerotouch.telemetry import Telemetry

Relay = Callable[..., Any]
_JSON = {"Content-Type": "application/json"}


def _many(alertname: str, count: int) -> dict[str, Any]:
    return payload(*(alert(alertname, namespace="bulk", deployment=f"d{i:05d}") for i in range(count)))


async def test_three_thousand_small_alerts_in_one_payload_are_accepted(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    # Before, anything over 1000 alerts was a 422 that Alertmanager never retries.
    async with relay(temporal_timeout_seconds=120) as (_, http):
        answer = await http.post("/alertmanager", json=_many(unique_alertname(), 3000), headers=AUTH, timeout=180)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3000
    assert len(answer.json()["incidents"]) == 3000
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), 3000, timeout=30) == 3000


async def test_body_over_the_default_limit_is_413_naming_the_limit(relay: Relay) -> None:
    body = json.dumps(payload(alert(unique_alertname(), namespace="bulk", deployment="d"))).encode()
    at_limit = body[:-2] + b" " * (DEFAULT_MAX_BODY_BYTES - len(body)) + body[-2:]
    assert len(at_limit) == DEFAULT_MAX_BODY_BYTES
    async with relay() as (server, http):
        # One byte more is refused from its Content-Length, before the body is read (raw: httpx
        # would insist on sending all of it first and then see the connection closed).
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(b"POST /alertmanager HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
                         + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n"
                           "\r\n".encode())
            await writer.drain()
            refused = await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()
        # The limit itself is read and parsed.
        accepted = await http.post("/alertmanager", content=at_limit, headers=AUTH | _JSON)
    assert refused.startswith(b"HTTP/1.1 413")
    assert f'"body is larger than {DEFAULT_MAX_BODY_BYTES} bytes"'.encode() in refused
    assert accepted.status_code == 200, accepted.text


async def test_deeply_nested_json_is_400(relay: Relay) -> None:
    nested = b'{"version": "4", "alerts": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    async with relay() as (_, http):
        answer = await http.post("/alertmanager", content=nested, headers=AUTH | _JSON)
    assert answer.status_code == 400
    assert "recursion limit" in answer.json()["detail"]


async def test_a_group_too_big_for_one_attempt_is_delivered_across_retries(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Each 503 keeps what Temporal took; the next attempt of the group continues from there."""
    alerts = 1000  # more than Temporal takes in 0.25 s, even the in-memory dev server on an idle machine
    body = _many(unique_alertname(), alerts)
    so_far: list[int] = []
    async with relay(temporal_timeout_seconds=0.25) as (_, http):
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            answer = await http.post("/alertmanager", json=body, headers=AUTH)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            so_far.append(int(answer.json()["detail"].split("(")[1].split()[0]))
            assert asyncio.get_running_loop().time() < deadline, so_far
    assert so_far, "the first attempt already delivered everything: the timeout is too generous for this test"
    assert so_far == sorted(so_far), f"an attempt lost progress: {so_far}"
    assert answer.json()["accepted"] == alerts
    assert len(answer.json()["incidents"]) == alerts
    assert await eventually(lambda: count_incidents(dev_env.client, task_queue), alerts, timeout=30) == alerts


async def test_concurrent_attempts_of_a_failed_group_send_each_alert_once() -> None:
    progress = GroupProgress(expires=0.0, resuming=True)
    sent: list[str] = []
    release = asyncio.Event()

    async def send() -> bool:
        sent.append("x")
        await release.wait()
        return True

    key = ("incident-x", "fp", "firing", datetime(2024, 5, 1, tzinfo=UTC))
    first = asyncio.create_task(progress.once(key, send))
    second = asyncio.create_task(progress.once(key, send))
    await asyncio.sleep(0.01)
    release.set()
    assert await first and await second
    assert await progress.once(key, send)
    assert sent == ["x"]


async def test_until_an_attempt_failed_every_repeat_is_sent() -> None:
    progress = GroupProgress(expires=0.0)
    sent = 0

    async def send() -> bool:
        nonlocal sent
        sent += 1
        await asyncio.sleep(0.01)
        return True

    key = ("incident-x", "fp", "firing", datetime(2024, 5, 1, tzinfo=UTC))
    assert all(await asyncio.gather(*(progress.once(key, send) for _ in range(3))))
    assert await progress.once(key, send)
    assert sent == 4
    assert not progress.in_flight


async def test_a_failed_send_is_retried_by_the_next_attempt() -> None:
    progress = GroupProgress(expires=0.0, resuming=True)
    calls = 0

    async def flaky() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("Temporal away")
        return True

    key = ("incident-x", "fp", "firing", datetime(2024, 5, 1, tzinfo=UTC))
    with pytest.raises(RuntimeError):
        await progress.once(key, flaky)
    assert await progress.once(key, flaky)
    assert calls == 2


def test_catch_up_forgets_a_group_once_delivered_or_expired() -> None:
    catch_up = CatchUp(ttl=60)
    progress = catch_up.begin("{}:{namespace=\"a\"}")
    assert catch_up.begin("{}:{namespace=\"a\"}") is progress
    catch_up.complete("{}:{namespace=\"a\"}", progress)
    assert len(catch_up) == 0
    # Completed after a failure: kept for the grace period, in case that attempt's client had gone.
    failed = catch_up.begin("b")
    failed.resuming = True
    catch_up.complete("b", failed)
    assert catch_up.begin("b") is failed
    shortly = CatchUp(ttl=60, grace=-1)
    failed = shortly.begin("b")
    failed.resuming = True
    shortly.complete("b", failed)
    assert shortly.begin("b") is not failed
    expired = CatchUp(ttl=-1)
    expired.begin("a")
    expired.begin("b")
    assert len(expired) == 1  # "a" expired when "b" began


@pytest.fixture
async def relay_with_metrics(dev_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[
        tuple[httpx.AsyncClient, Telemetry]]:
    telemetry = Telemetry("zerotouch-relay-test", span_exporter=None)
    await telemetry.start()
    try:
        app = create_app(client=dev_env.client, config=RelayConfig(token=TOKEN, task_queue=task_queue),
                         telemetry=telemetry)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay") as http:
            yield http, telemetry
    finally:
        await telemetry.stop()


def _metric(text: str, name: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name)


async def test_truncated_alerts_are_counted_and_warned_about(
    relay_with_metrics: tuple[httpx.AsyncClient, Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    http, telemetry = relay_with_metrics
    body = {**payload(alert(unique_alertname(), namespace="bulk", deployment="d")), "truncatedAlerts": 7,
            "groupKey": '{}:{namespace="bulk"}'}
    with caplog.at_level(logging.WARNING, logger="zerotouch.relay"):
        answer = await http.post("/alertmanager", json=body, headers=AUTH)
        untruncated = await http.post("/alertmanager", json=payload(alert(unique_alertname())), headers=AUTH)
    assert answer.status_code == 200 and untruncated.status_code == 200
    assert _metric(telemetry.metrics_text().decode(), "zerotouch_alerts_truncated_total") == 7
    warnings = [record.getMessage() for record in caplog.records if "truncatedAlerts" in record.getMessage()]
    assert len(warnings) == 1
    assert "withheld 7 alerts" in warnings[0] and "max_alerts" in warnings[0]


async def test_absorbed_repeats_are_counted(relay_with_metrics: tuple[httpx.AsyncClient, Telemetry]) -> None:
    http, telemetry = relay_with_metrics
    body = payload(alert(unique_alertname(), namespace="bulk", deployment="d"))
    answers = [await http.post("/alertmanager", json=body, headers=AUTH) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200] * 3
    text = telemetry.metrics_text().decode()
    assert _metric(text, "zerotouch_relay_alerts_absorbed_total") == 2
    assert _metric(text, "zerotouch_alerts_received_total") == 3  # every delivery is still counted as received
