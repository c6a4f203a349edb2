"""A resolved incident closes only once Alertmanager confirms its alerts stopped (RELIABILITY.md, issue 18).

Time-skipping server, the real workers, a sandbox cluster and a real Alertmanager (Debian's)
that the test feeds through its v2 API, playing Prometheus.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.delivery.alertmanager import Alertmanager, am_alert
from tests.support.receiver import Receiver
from tests.support.zt import open_incident, replay_and_record, running_workers, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch.alerts import AlertEvent
from zerotouch.models import AbortInput, IncidentStatus
from zerotouch.ports import free_port

COOLDOWN = timedelta(minutes=10)  # make_policy's resolution_cooldown


async def _start_alertmanager(workdir: Path, port: int | None = None) -> Alertmanager:
    workdir.mkdir(parents=True, exist_ok=True)
    token = workdir / "token"
    token.write_text("unused\n")
    # Its webhook points nowhere: the incidents hear of alerts from the test, and ask its API.
    return await Alertmanager.start(workdir, relay_url="http://127.0.0.1:9", token_file=token,
                                    group_by=["alertname"], port=port)


@pytest_asyncio.fixture(scope="module")
async def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Alertmanager]:
    running = await _start_alertmanager(tmp_path_factory.mktemp("am"))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def cluster() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _crashloop_alert(deployment: str = "web") -> dict[str, Any]:
    # A label of its own per test: the module's Alertmanager outlives each test's alerts. Firing for two
    # minutes already, so an instance that fires again later starts visibly later.
    alert = am_alert("KubePodCrashLooping", namespace="shop", deployment=deployment, run=uuid.uuid4().hex[:8])
    return {**alert, "startsAt": (datetime.now(UTC) - timedelta(minutes=2)).isoformat()}


async def _event(alertmanager: Alertmanager, alert: dict[str, Any], *, external_url: str = "") -> AlertEvent:
    """The delivery the relay would make of ``alert``: Alertmanager's fingerprint, its externalURL."""
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{alertmanager.url}/api/v2/alerts")).json()
    [found] = [item for item in listed if item["labels"] == alert["labels"]]
    return AlertEvent(fingerprint=found["fingerprint"], status="firing", labels=alert["labels"],
                      starts_at=datetime.fromisoformat(found["startsAt"]), external_url=external_url)


async def _resolve_at_source(alertmanager: Alertmanager, alert: dict[str, Any]) -> None:
    """What Prometheus sends when the rule stops firing: the alert, ending now."""
    await alertmanager.post([{**alert, "endsAt": datetime.now(UTC).isoformat()}])


def _messages(status: IncidentStatus) -> list[str]:
    return [entry.message for entry in status.timeline]


async def test_an_alert_still_active_at_the_source_keeps_the_incident_open_and_it_acts_again(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, alertmanager: Alertmanager, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    alert = _crashloop_alert()
    await alertmanager.post([alert])
    event = await _event(alertmanager, alert, external_url=alertmanager.url)  # as the relay hands it on
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, event, make_policy())
        await wait_for(handle, lambda s: s.state == "resolved")
        # The alert resolves and the fault comes back; the relay never says so (it was down): only
        # Alertmanager knows, as a new instance of the alert.
        await _resolve_at_source(alertmanager, alert)
        sandbox.inject("crashloop", namespace="shop", deployment="web")
        await alertmanager.post([{**alert, "startsAt": datetime.now(UTC).isoformat()}])
        await time_env.sleep(COOLDOWN + timedelta(minutes=1))
        status = await wait_for(handle, lambda s: any("treated as fired again" in m for m in _messages(s)))
        assert status.state != "closed" and status.firing
        # Acts again under its runbook and the Governor (the 5 minute target cooldown has passed).
        await wait_for(handle, lambda s: s.attempts == 2 and s.state == "resolved")
        await _resolve_at_source(alertmanager, alert)
        final = await handle.result()
    await replay_and_record(handle, "confirm-at-source-refire")
    assert final.state == "resolved" and final.attempts == 2
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 2
    messages = _messages(final)
    assert any(f"KubePodCrashLooping active at Alertmanager {alertmanager.url} after the cooldown" in m
               for m in messages)
    assert any(f"confirmed with Alertmanager at {alertmanager.url}: none of its 1 alert(s)" in m for m in messages)
    assert messages[-2].startswith("closed after a quiet cooldown"), messages[-3:]


async def test_an_alert_resolved_at_the_source_lets_the_incident_close(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, alertmanager: Alertmanager, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    alert = _crashloop_alert()
    await alertmanager.post([alert])
    event = await _event(alertmanager, alert)
    policy = make_policy(alertmanager={"url": alertmanager.url})  # the policy names it; no externalURL
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, event, policy)
        await wait_for(handle, lambda s: s.state == "resolved")
        await _resolve_at_source(alertmanager, alert)
        final = await handle.result()
    assert final.state == "resolved" and final.attempts == 1
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
    assert any(f"confirmed with Alertmanager at {alertmanager.url}" in m for m in _messages(final))


async def test_the_alert_it_had_before_the_fix_keeps_it_open_without_acting_until_it_resolves(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, alertmanager: Alertmanager, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    alert = _crashloop_alert()
    await alertmanager.post([alert])
    event = await _event(alertmanager, alert, external_url=alertmanager.url)
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, event, make_policy())
        await wait_for(handle, lambda s: s.state == "resolved")
        # The rule lags the fix: the same alert still fires when the cooldown ends.
        await time_env.sleep(COOLDOWN + timedelta(minutes=1))
        status = await wait_for(handle, lambda s: any("still firing at Alertmanager" in m for m in _messages(s)))
        assert status.state == "resolved" and status.attempts == 1
        await _resolve_at_source(alertmanager, alert)
        # The relay delivers the resolution: the incident asks again at once, and closes.
        await handle.signal(IncidentWorkflow.alert_resolved, event.model_copy(update={"status": "resolved"}))
        final = await handle.result()
    assert final.state == "resolved" and final.attempts == 1
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
    assert any(m.startswith(f"confirmed with Alertmanager at {alertmanager.url}") for m in _messages(final))


async def test_an_unreachable_alertmanager_keeps_it_open_until_it_answers(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    event = AlertEvent(fingerprint="f00d", status="firing", starts_at=datetime.now(UTC),
                       labels={"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web"})
    later: Alertmanager | None = None
    try:
        async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
            handle = await open_incident(time_env.client, cluster, event, make_policy(alertmanager={"url": url}))
            await wait_for(handle, lambda s: s.state == "resolved")
            await time_env.sleep(COOLDOWN + timedelta(minutes=1))
            status = await wait_for(handle, lambda s: any("could not confirm" in m for m in _messages(s)))
            note = next(m for m in _messages(status) if "could not confirm" in m)
            assert note.startswith(f"could not confirm with Alertmanager at {url}: ") and note.endswith("staying open")
            assert status.state == "resolved", "still open, not closed"
            later = await _start_alertmanager(tmp_path / "am", port=port)  # it answers now: nothing active
            final = await handle.result()
    finally:
        if later is not None:
            await later.stop()
    assert final.state == "resolved"
    messages = _messages(final)
    assert messages.index(note) < next(i for i, m in enumerate(messages) if m.startswith("confirmed with"))
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1


async def test_unconfirmed_for_hours_it_escalates_to_a_human(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, receiver: Receiver, cluster: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    event = AlertEvent(fingerprint="beef", status="firing", starts_at=datetime.now(UTC),
                       labels={"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web"})
    policy = make_policy(receiver.url, alertmanager={"url": url, "escalate_unconfirmed_after": "1h"})
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, event, policy)
        await wait_for(handle, lambda s: s.state == "resolved")
        await time_env.sleep(COOLDOWN + timedelta(minutes=1))
        await wait_for(handle, lambda s: any("could not confirm" in m for m in _messages(s)))
        await time_env.sleep(timedelta(hours=1, minutes=30))
        status = await wait_for(handle, lambda s: s.state == "escalated")
        assert any(f"Alertmanager at {url} has not confirmed the resolution for 1h" in m for m in _messages(status))
        chat = [body for path, body in receiver.received if path == "/chat"]
        assert chat and "has not confirmed the resolution" in chat[-1]["text"]
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="checked by hand"))
        assert (await handle.result()).state == "aborted"


async def test_without_a_known_alertmanager_it_closes_as_before_and_says_so(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    event = AlertEvent(fingerprint="cafe", status="firing", starts_at=datetime.now(UTC),
                       labels={"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web"})
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, event, make_policy())
        final = await handle.result()
    assert final.state == "resolved"
    assert any(m.startswith("not confirmed at the source: no Alertmanager URL is known") for m in _messages(final))
