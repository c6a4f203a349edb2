"""SIGKILL the Temporal server under waiting incidents; restart it on the same SQLite file and port.

Three incidents wait on the three things an incident waits on — a timer (the escalation
ladder), a human (approve-all mode) and a verification (a rollout that must hold) — when the
dev server that `zerotouch up` runs is killed. After the restart on the same file all three
resume from their histories and finish; the timers fire when due (never early), or right after
the restart when they fell due during the outage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from sandbox import SandboxCluster
from tests.reliability.cluster import reliability_policy, restart_runbook
from tests.reliability.history import FiredTimer, fired_timers
from tests.reliability.workers import in_process_workers
from tests.support.processes import TemporalDevServer
from tests.support.receiver import Receiver
from tests.support.zt import alert, open_incident, wait_for
from workflows.incident import IncidentWorkflow
from zerotouch.models import ApproveInput, IncidentStatus
from zerotouch.names import ALL_QUEUES
from zerotouch.ports import free_port

OUTAGE_SECONDS = 8.0
RUNG_IN_OUTAGE = 6  # seconds after detection: falls due while the server is down
RUNG_AFTER_OUTAGE = 20  # seconds after automation gave up: falls due after the restart
HOLD_SECONDS = 15  # the verification still holds when the server comes back
# How late a timer may fire after it fell due (or after the server was back, if it fell due in
# the outage). Generous: the machine is shared; early is never allowed.
LATE_BOUND = timedelta(seconds=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _wall() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # history timestamps are naive UTC


async def _closed(handle: WorkflowHandle[Any, IncidentStatus], timeout: float = 120.0) -> IncidentStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert asyncio.get_running_loop().time() < deadline, f"{handle.id} still running after {timeout}s"
        await asyncio.sleep(0.2)
    return await handle.result()


async def test_timer_approval_and_verification_survive_a_server_kill(
    tmp_path: Path, sandbox: SandboxCluster, receiver: Receiver
) -> None:
    server = TemporalDevServer(db_file=tmp_path / "temporal.db", port=free_port(), log_file=tmp_path / "server.log")
    cluster = f"s{uuid.uuid4().hex[:8]}"
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    sandbox.inject("crashloop", namespace="shop", deployment="checkout")
    ladder = {"P1": [{"after": f"{RUNG_IN_OUTAGE}s", "notify": ["pager"]},
                     {"after": f"{RUNG_AFTER_OUTAGE}s", "notify": ["pager"], "when": "failed"}]}
    try:
        client = await server.start()
        async with in_process_workers(client, cluster, queues=ALL_QUEUES, kubernetes_url=sandbox.url,
                                      ledger_url=f"sqlite:///{tmp_path}/ledger.db"):
            approval = await open_incident(
                client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="web"),
                reliability_policy(mode="approve-all"))
            verification = await open_incident(
                client, cluster, alert("KubePodCrashLooping", namespace="shop", deployment="checkout"),
                reliability_policy(runbooks=[restart_runbook("restart-and-hold", "KubePodCrashLooping",
                                                             hold_for=f"{HOLD_SECONDS}s", timeout="90s")]))
            await wait_for(approval, lambda s: s.state == "awaiting_approval", timeout=60)
            await wait_for(verification, lambda s: s.state == "verifying", timeout=60)
            timer = await open_incident(client, cluster, alert("SomethingOdd", severity="critical", namespace="shop"),
                                        reliability_policy(receiver.url, escalation=ladder))
            await wait_for(timer, lambda s: s.state == "escalated", timeout=60)

            killed_at = _wall()
            await server.kill()
            await asyncio.sleep(OUTAGE_SECONDS)
            respawned_at = _wall()
            await server.spawn()
            await server.connect()
            back_at = _wall()

            assert (await approval.query(IncidentWorkflow.status)).state == "awaiting_approval"
            assert not sandbox.actions(namespace="shop", name="web"), "nothing acted before the approval"
            await approval.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob", note="after restart"))
            deadline = time.monotonic() + RUNG_AFTER_OUTAGE + 60
            while len([p for p, _ in receiver.received if p == "/pager"]) < 2:
                assert time.monotonic() < deadline, f"pages so far: {receiver.received}"
                await asyncio.sleep(0.2)
            await timer.signal(IncidentWorkflow.alert_resolved,
                               alert("SomethingOdd", "resolved", severity="critical", namespace="shop"))
            finals = [await _closed(handle) for handle in (timer, approval, verification)]
            timers = {handle.id: await fired_timers(handle) for handle in (timer, approval, verification)}
    finally:
        await server.stop()

    _, approval_final, verification_final = finals
    assert [f.state for f in finals] == ["resolved"] * 3, [f.timeline[-3:] for f in finals]
    # (b) the approval given after the restart was acted on, once.
    assert any(e.kind == "approval" and e.actor == "bob" for e in approval_final.timeline)
    assert len(sandbox.actions(namespace="shop", name="web")) == 1
    assert [a.outcome for a in approval_final.actions] == ["applied"]
    # (c) the verification that was holding when the server died finished and counted.
    assert len(sandbox.actions(namespace="shop", name="checkout")) == 1
    assert any(e.kind == "verification" and e.message.startswith("verified") for e in verification_final.timeline)
    # (a) each rung paged exactly once: nothing lost, nothing repeated by the restart.
    pages = [body["text"] if isinstance(body, dict) and "text" in body else str(body)
             for path, body in receiver.received if path == "/pager"]
    assert len(pages) == 2, pages

    for incident, fired in timers.items():
        for t in fired:
            assert t.fired_at >= t.due_at, f"{incident}: a timer fired early: {t}"
            assert t.fired_at <= max(t.due_at, back_at) + LATE_BOUND, f"{incident}: a timer fired late: {t}"
    ladder_timers = timers[timer.id]
    in_outage = _one(ladder_timers, timedelta(seconds=RUNG_IN_OUTAGE), killed_at)
    assert killed_at < in_outage.due_at < back_at, f"precondition: the rung fell due in the outage {in_outage}"
    assert in_outage.fired_at > respawned_at, "it fired once the server was back, from the file"
    after_outage = _one(ladder_timers, timedelta(seconds=RUNG_AFTER_OUTAGE), killed_at)
    assert in_outage.started_at < killed_at and back_at < after_outage.due_at, f"precondition: {after_outage}"
    print(f"\nserver kill: outage {(back_at - killed_at).total_seconds():.1f}s; "
          f"rung due in outage fired {(in_outage.fired_at - in_outage.due_at).total_seconds():.2f}s after due "
          f"({(in_outage.fired_at - back_at).total_seconds():.2f}s after the server answered); "
          f"rung due after restart fired {(after_outage.fired_at - after_outage.due_at).total_seconds():.3f}s "
          f"after due; timers checked: {sum(len(v) for v in timers.values())}")


def _one(timers: list[FiredTimer], timeout: timedelta, killed_at: datetime) -> FiredTimer:
    """The ladder's timer of this length that was started before the kill (it spans the outage)."""
    found = [t for t in timers if abs(t.timeout - timeout) < timedelta(seconds=2) and t.started_at < killed_at]
    assert len(found) == 1, f"expected one {timeout} timer started before the kill, got {found} of {timers}"
    return found[0]
