"""find_firing_alerts against a real Alertmanager (Debian's) on a free 127.0.0.1 port, fed through its v2 API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.alertmanager_source import REJECTED, UNREACHABLE, AlertmanagerActivities
from tests.delivery.alertmanager import Alertmanager, am_alert
from zerotouch.alertmanager_source import SourceCheck, source_url, usable_source_url
from zerotouch.alerts import AlertEvent, WebhookPayload, fingerprint_of, to_event
from zerotouch.ports import free_port


@pytest_asyncio.fixture(scope="module")
async def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Alertmanager]:
    workdir = tmp_path_factory.mktemp("am-source")
    token = workdir / "token"
    token.write_text("unused\n")
    # Its webhook points nowhere: these tests only read its API.
    running = await Alertmanager.start(workdir, relay_url="http://127.0.0.1:9", token_file=token,
                                       group_by=["alertname"])
    try:
        yield running
    finally:
        await running.stop()


async def _find(url: str, labels: dict[str, str], fingerprint: str | None = None) -> list[str]:
    check = SourceCheck(url=url, matchers={"alertname": labels["alertname"], "namespace": labels["namespace"]},
                        fingerprints=[fingerprint or fingerprint_of(labels)])
    async with httpx.AsyncClient() as http:
        answer = await ActivityEnvironment().run(AlertmanagerActivities(http=http).find_firing_alerts, check)
    return [alert.fingerprint for alert in answer.active]


def _alert(**extra: Any) -> dict[str, Any]:
    return am_alert("SourceCheck", namespace="shop", deployment=f"web-{uuid.uuid4().hex[:8]}", **extra)


async def _fingerprint(alertmanager: Alertmanager, labels: dict[str, str]) -> str:
    """Alertmanager's own fingerprint of the alert (the one its webhooks carry)."""
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{alertmanager.url}/api/v2/alerts")).json()
    [found] = [alert["fingerprint"] for alert in listed if alert["labels"] == labels]
    return str(found)


async def test_an_active_alert_is_found_by_alertmanagers_fingerprint_and_by_ours(alertmanager: Alertmanager) -> None:
    alert = _alert()
    await alertmanager.post([alert])
    labels = alert["labels"]
    theirs = await _fingerprint(alertmanager, labels)
    assert await _find(alertmanager.url, labels, theirs) == [theirs]
    assert await _find(alertmanager.url, labels) == [fingerprint_of(labels)]  # alerts sent without a fingerprint


async def test_a_resolved_alert_is_not_active(alertmanager: Alertmanager) -> None:
    alert = _alert()
    alert["startsAt"] = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    alert["endsAt"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await alertmanager.post([alert])
    assert await _find(alertmanager.url, alert["labels"]) == []


async def test_a_silenced_alert_counts_as_not_active(alertmanager: Alertmanager) -> None:
    alert = _alert()
    await alertmanager.post([alert])
    assert await _find(alertmanager.url, alert["labels"]) != []
    now = datetime.now(UTC)
    silence = {"matchers": [{"name": "deployment", "value": alert["labels"]["deployment"], "isRegex": False,
                             "isEqual": True}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
               "createdBy": "test", "comment": "a person decided it needs no one"}
    async with httpx.AsyncClient() as http:
        (await http.post(f"{alertmanager.url}/api/v2/silences", json=silence)).raise_for_status()
    assert await _find(alertmanager.url, alert["labels"]) == []


@pytest.mark.parametrize("value", ['say "hi"', "back\\slash", "two\nlines", "a,b{c}=~d", " padded ", "ünï"])
async def test_label_values_are_quoted_so_alertmanager_matches_them(alertmanager: Alertmanager, value: str) -> None:
    alert = _alert()
    alert["labels"]["namespace"] = value  # one of the filter's matchers
    await alertmanager.post([alert])
    assert await _find(alertmanager.url, alert["labels"]) == [fingerprint_of(alert["labels"])]


async def test_an_unreachable_alertmanager_is_a_retryable_error() -> None:
    with pytest.raises(ApplicationError) as raised:
        await _find(f"http://127.0.0.1:{free_port()}", _alert()["labels"])
    assert raised.value.type == UNREACHABLE and not raised.value.non_retryable
    assert "could not reach Alertmanager at http://127.0.0.1:" in raised.value.message


async def test_a_url_that_is_not_alertmanager_is_not_retried(alertmanager: Alertmanager) -> None:
    with pytest.raises(ApplicationError) as raised:
        await _find(f"{alertmanager.url}/not-here", _alert()["labels"])
    assert raised.value.type == REJECTED and raised.value.non_retryable
    assert "answered HTTP 404" in raised.value.message and "alertmanager.url" in raised.value.message


@pytest.mark.parametrize("bad", [
    "ftp://am:9093", "http://user:secret@am:9093", "http://am:9093/?x=1", "http://am:9093/#top", "am:9093",
    "http://", "http://am:9093/ path", "http://am:99999", "http://am/" + "a" * 2100, "javascript:alert(1)",
])
def test_bad_alertmanager_urls_are_refused_or_dropped(bad: str) -> None:
    with pytest.raises(ValueError):
        source_url(bad)
    assert usable_source_url(bad) == ""
    event = AlertEvent(fingerprint="f", status="firing", labels={"alertname": "A"}, starts_at=datetime.now(UTC),
                       external_url=bad)
    assert event.external_url == "", "a bad externalURL is dropped, the alert kept"


def test_the_webhooks_external_url_reaches_the_incident() -> None:
    payload = WebhookPayload.model_validate({
        "version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "zerotouch",
        "externalURL": "http://alertmanager.monitoring:9093/am/",
        "alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": datetime.now(UTC).isoformat()}],
    })
    event = to_event(payload.alerts[0], external_url=payload.external_url)
    assert event.external_url == "http://alertmanager.monitoring:9093/am"
    assert source_url("https://am.example.org") == "https://am.example.org"


def test_the_policy_override_is_validated(tmp_path: Path) -> None:
    from zerotouch.policy import PolicyError, parse_policy

    policy = parse_policy({"alertmanager": {"url": "http://alertmanager:9093/", "escalate_unconfirmed_after": "2h"}})
    assert policy.alertmanager.url == "http://alertmanager:9093"
    assert policy.alertmanager.escalate_unconfirmed_after == timedelta(hours=2)
    with pytest.raises(PolicyError, match=r"alertmanager.url: .*credentials"):
        parse_policy({"alertmanager": {"url": "http://admin:pw@alertmanager:9093"}})
