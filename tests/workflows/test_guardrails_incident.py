"""Guardrails seen from an incident: kill switch, observe mode, breaker, trust, mandatory escalations."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.support.zt import alert, open_incident, replay_and_record, running_workers, until_closed, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch import governor_client as governor
from zerotouch.governor_policy import governor_settings
from zerotouch.models import AbortInput, ApproveInput
from zerotouch.policy import Policy


@pytest.fixture
def cluster() -> str:
    return f"g{uuid.uuid4().hex[:8]}"


def restart_once_policy(**overrides: Any) -> Policy:
    runbook = {
        "name": "restart-crashlooping",
        "match": {"alertname": ["KubePodCrashLooping"]},
        "steps": [{"action": "restart_deployment"}],
        "verify": {"hold_for": "200ms", "timeout": "2s"},
        "max_attempts": 1,
    }
    return make_policy(runbooks=[runbook], **{"escalation": {}, **overrides})


def restarts(sandbox: SandboxCluster, name: str = "web") -> int:
    return len(sandbox.actions(namespace="shop", name=name, kind="restart"))


async def test_kill_switch_escalates_instead_of_acting_until_it_expires(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    policy = restart_once_policy()
    client = time_env.client
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy):
        await governor.ensure_governor(client, cluster, governor_settings(policy))
        await governor.pause(client, cluster, "alice", "deploy freeze", timedelta(minutes=30))
        handle = await open_incident(client, cluster, alert("KubePodCrashLooping", namespace="shop",
                                                            deployment="web"), policy)
        status = await wait_for(
            handle, lambda s: s.state == "escalated" and any("kill switch" in e.message for e in s.timeline)
        )
        assert restarts(sandbox) == 0 and not status.frozen
        assert any("automation paused" in e.message or "kill switch" in e.message for e in status.timeline)
        await time_env.sleep(timedelta(minutes=31))  # the pause expires by itself
        await wait_for(handle, lambda s: s.state == "resolved")
        final = await handle.result()
    assert restarts(sandbox) == 1 and final.state == "resolved"
    await replay_and_record(handle, "kill-switch-then-act")


async def test_observe_mode_records_the_plan_and_touches_nothing(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, alert("KubePodCrashLooping", namespace="shop",
                                                                     deployment="web"),
                                     restart_once_policy(mode="observe"))
        status = await wait_for(handle, lambda s: s.state == "escalated")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="observed enough"))
        await handle.result()
    assert any("would run restart_deployment on shop/web" in e.message for e in status.timeline)
    assert sandbox.actions() == [], "observe mode never touches the cluster"


async def test_breaker_opens_after_failures_and_the_next_incident_waits_for_approval(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    policy = restart_once_policy(guardrails={"breaker_failures": 2, "target_cooldown": "1s"},
                                 trust={"prior_successes": 50, "prior_failures": 1})
    client = time_env.client
    sandbox.inject("unfixable", namespace="shop", deployment="web")
    async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy):
        for number in range(2):
            handle = await open_incident(client, cluster, alert("KubePodCrashLooping", namespace="shop",
                                                                deployment="web", n=str(number)), policy)
            await wait_for(handle, lambda s: s.state == "escalated" and s.attempts == 1)
            await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="next"))
            await until_closed(handle)
        for _ in range(100):  # outcomes reach the Governor as signals, a moment after the incident moves on
            state = await governor.governor_status(client, cluster)
            if any(b.open for b in state.breakers):
                break
            await asyncio.sleep(0.1)
        assert any(b.open for b in state.breakers), state
        third = await open_incident(client, cluster, alert("KubePodCrashLooping", namespace="shop",
                                                           deployment="web", n="3"), policy)
        status = await wait_for(third, lambda s: s.state == "awaiting_approval")
        assert "breaker" in status.pending_approval.reason  # type: ignore[union-attr]
        assert restarts(sandbox) == 2
        await third.execute_update(IncidentWorkflow.approve, ApproveInput(by="bob"))
        await wait_for(third, lambda s: s.attempts == 1 and s.state == "escalated")
        await third.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="done"))
        await until_closed(third)
    assert restarts(sandbox) == 3


async def test_a_runbook_that_keeps_failing_loses_trust_and_asks_for_approval(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    policy = restart_once_policy(guardrails={"breaker_failures": 10, "target_cooldown": "1s"})
    client = time_env.client
    sandbox.inject("unfixable", namespace="shop", deployment="web")
    async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy):
        confidences = []
        for number in range(10):
            handle = await open_incident(client, cluster, alert("KubePodCrashLooping", namespace="shop",
                                                                deployment="web", n=str(number)), policy)
            status = await wait_for(handle, lambda s: s.state in ("escalated", "awaiting_approval"))
            await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="next"))
            await until_closed(handle)
            if status.state == "awaiting_approval":
                assert "confidence" in status.pending_approval.reason  # type: ignore[union-attr]
                break
            # The outcome reaches the Governor as a signal: wait until it counted this failure.
            row = await _trust_row_when(client, cluster, lambda r, n=number: r.failures == n + 1)
            confidences.append(row.confidence)
        else:
            raise AssertionError(f"trust never dropped: {confidences}")
    assert confidences == sorted(confidences, reverse=True) and len(confidences) >= 1
    assert row.failures == len(confidences) and row.level == "approval"


async def _trust_row_when(client: Any, cluster: str, predicate: Any) -> Any:
    for _ in range(100):
        rows = [r for r in await governor.trust_table(client, cluster) if r.runbook == "restart-crashlooping"]
        if rows and predicate(rows[0]):
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"trust record never matched: {rows}")


@pytest.mark.parametrize(
    ("labels", "overrides", "expected"),
    [
        ({"service": "billing"}, {}, "protected service"),
        ({"security_incident": "CVE-2026-0001"}, {}, "security signal"),
        ({}, {"escalate_when": {"data_consistency_actions": ["restart_deployment"]}}, "data consistency"),
    ],
    ids=["auth-or-billing", "security-signal", "data-consistency"],
)
async def test_mandatory_escalations_stop_automation_and_freeze(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str,
    labels: dict[str, str], overrides: dict[str, Any], expected: str,
) -> None:
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(time_env.client, cluster, alert("KubePodCrashLooping", namespace="shop",
                                                                     deployment="web", **labels),
                                     restart_once_policy(**overrides))
        status = await wait_for(handle, lambda s: s.state == "escalated")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="seen"))
        await handle.result()
    assert status.frozen
    assert any(expected in e.message for e in status.timeline), [e.message for e in status.timeline]
    assert sandbox.actions() == []


def lag_policy(monthly: float) -> Policy:
    runbook = {
        "name": "scale-consumers-on-lag",
        "match": {"alertname": ["KafkaConsumerLagHigh"]},
        "target": {"deployment_label": "consumergroup"},
        "steps": [{"action": "scale_deployment", "params": {"factor": 2}}],
        "verify": {"hold_for": "200ms", "timeout": "3s"},
        "max_attempts": 1,
    }
    # The ADR's example: a EUR 15 monthly budget, EUR 4.50 per node; the sandbox runs 3 nodes (EUR 13.50).
    return make_policy(runbooks=[runbook], escalation={},
                       budget={"monthly": monthly, "cost_per_node": 4.50, "notify_at": [0.8, 0.9]})


def write_policy(path: Path, policy: Policy) -> str:
    """The workers' policy file (JSON is YAML): the Governor's limits come only from it."""
    path.write_text(json.dumps(policy.model_dump(mode="json", by_alias=True)))
    return str(path)


async def test_budget_notifies_at_80_and_90_percent_and_blocks_scale_ups_at_100(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str, tmp_path: Path
) -> None:
    fired = alert("KafkaConsumerLagHigh", namespace="shop", consumergroup="email-worker")
    sandbox.inject("overload", namespace="shop", deployment="email-worker")
    policy_file = tmp_path / "policy.yaml"
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url,
                               policy_path=write_policy(policy_file, lag_policy(15.0))):
        handle = await open_incident(time_env.client, cluster, fired, lag_policy(15.0))
        status = await wait_for(handle, lambda s: s.state == "resolved")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="done"))
        await until_closed(handle)
        budget_notes = [e.message for e in status.timeline if e.kind == "budget"]
        assert len(budget_notes) == 2 and "80%" in budget_notes[0] and "90%" in budget_notes[1], budget_notes
        assert "€13.50" in budget_notes[0]
        assert len(sandbox.actions(namespace="shop", name="email-worker", kind="scale")) == 1

        # A budget smaller than what three nodes cost: no scale-up is granted (the cooldown passes first).
        await time_env.sleep(timedelta(minutes=6))
        write_policy(policy_file, lag_policy(12.0))  # the operator lowers the budget in the policy file
        tight = await open_incident(time_env.client, cluster, fired, lag_policy(12.0),
                                    incident_id=f"incident-tight-{cluster}")
        refused = await wait_for(tight, lambda s: s.state == "escalated")
        await tight.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="done"))
        await until_closed(tight)
    assert any("budget" in e.message and "blocked" in e.message for e in refused.timeline), refused.timeline
    assert len(sandbox.actions(namespace="shop", name="email-worker", kind="scale")) == 1
