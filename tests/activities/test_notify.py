"""send_notification against local HTTP receivers: webhook, Slack, PagerDuty, dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError

from activities.notify import NotifyActivities
from zerotouch.models import Notification
from zerotouch.policy import Channel
from zerotouch.ports import free_port

from .conftest import Env, Receiver


@pytest_asyncio.fixture
async def notify() -> AsyncIterator[NotifyActivities]:
    async with httpx.AsyncClient() as http:
        yield NotifyActivities(http=http)


def note(destination: Channel | None, **fields: Any) -> Notification:
    values: dict[str, Any] = {"channel": "ops", "incident_id": "incident-42", "severity": "P1",
                              "summary": "web is crashlooping", "text": "restarted once", "destination": destination}
    return Notification(**{**values, **fields})


async def test_webhook_posts_the_notification(receiver: Receiver, notify: NotifyActivities, activity_env: Env) -> None:
    result = await activity_env.env.run(notify.send_notification, note(Channel(type="webhook", url=receiver.url)))
    assert result.delivered
    [(_, body)] = receiver.received
    assert body["incident_id"] == "incident-42" and body["summary"] == "web is crashlooping"
    assert "destination" not in body  # its URL may be a secret


async def test_slack_body_and_url_from_env(receiver: Receiver, notify: NotifyActivities, activity_env: Env,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SLACK_URL", f"{receiver.url}/services/T000/B000/secret")
    channel = Channel(type="slack", url_env="OPS_SLACK_URL")
    assert (await activity_env.env.run(notify.send_notification, note(channel))).delivered
    [(path, body)] = receiver.received
    assert path == "/services/T000/B000/secret"
    assert body["text"] == "[P1] web is crashlooping\nrestarted once"


@pytest.mark.parametrize(("severity", "expected"), [("P0", "critical"), ("P1", "critical"), ("P2", "error"),
                                                    ("P3", "warning"), ("P4", "info")])
async def test_pagerduty_events_v2(receiver: Receiver, notify: NotifyActivities, activity_env: Env,
                                   monkeypatch: pytest.MonkeyPatch, severity: str, expected: str) -> None:
    monkeypatch.setenv("PD_KEY", "routing-key-123")
    channel = Channel(type="pagerduty", url=f"{receiver.url}/v2/enqueue", routing_key_env="PD_KEY")
    await activity_env.env.run(notify.send_notification, note(channel, severity=severity))
    await activity_env.env.run(notify.send_notification, note(channel, severity=severity, event="resolve"))
    [(_, trigger), (_, resolve)] = receiver.received
    assert trigger["routing_key"] == "routing-key-123" and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "incident-42"
    assert trigger["payload"]["severity"] == expected and trigger["payload"]["source"] == "zerotouch"
    assert trigger["payload"]["summary"] == f"[{severity}] web is crashlooping"
    assert resolve == {"routing_key": "routing-key-123", "event_action": "resolve", "dedup_key": "incident-42"}


async def test_pagerduty_without_routing_key(receiver: Receiver, notify: NotifyActivities, activity_env: Env,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PD_MISSING", raising=False)
    channel = Channel(type="pagerduty", url=receiver.url, routing_key_env="PD_MISSING")
    with pytest.raises(ApplicationError) as caught:
        await activity_env.env.run(notify.send_notification, note(channel))
    assert caught.value.type == "MissingSecret" and caught.value.non_retryable
    assert receiver.received == []


async def test_dashboard_needs_no_http(notify: NotifyActivities, activity_env: Env) -> None:
    for destination in (Channel(type="dashboard"), None):
        result = await activity_env.env.run(notify.send_notification, note(destination, channel="dashboard"))
        assert result.delivered and result.detail == "recorded on the dashboard"


@pytest.mark.parametrize(("status", "kind", "retryable"), [(500, "NotificationUnavailable", True),
                                                            (503, "NotificationUnavailable", True),
                                                            (429, "NotificationUnavailable", True),
                                                            (400, "NotificationRejected", False),
                                                            (404, "NotificationRejected", False)])
async def test_error_statuses(receiver: Receiver, notify: NotifyActivities, activity_env: Env, status: int,
                              kind: str, retryable: bool) -> None:
    receiver.statuses.append(status)
    secret_url = f"{receiver.url}/hooks/s3cr3t-token"
    with pytest.raises(ApplicationError) as caught:
        await activity_env.env.run(notify.send_notification, note(Channel(type="slack", url=secret_url)))
    assert caught.value.type == kind and caught.value.non_retryable is not retryable
    assert "s3cr3t" not in caught.value.message and str(receiver.url) not in caught.value.message
    # The retry Temporal would make succeeds once the receiver recovers.
    if retryable:
        assert (await activity_env.env.run(notify.send_notification, note(Channel(type="slack", url=secret_url)))
                ).delivered


async def test_unreachable_receiver_is_retryable_and_hides_url(activity_env: Env) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/s3cr3t-token"
    with pytest.raises(ApplicationError) as caught:  # its own short-lived client when none is injected
        await activity_env.env.run(NotifyActivities().send_notification, note(Channel(type="webhook", url=url)))
    assert caught.value.type == "NotificationUnavailable" and not caught.value.non_retryable
    assert "s3cr3t" not in caught.value.message and caught.value.__cause__ is None


async def test_unknown_channel_without_destination(notify: NotifyActivities, activity_env: Env) -> None:
    with pytest.raises(ApplicationError) as caught:
        await activity_env.env.run(notify.send_notification, note(None))
    assert caught.value.type == "UnknownChannel" and caught.value.non_retryable
