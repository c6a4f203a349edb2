"""postgres_primary_stop drills on real PostgreSQL: a primary and its `pg_basebackup -R` replica, the real relay,
every worker. The primary is stopped for real; its alert goes through the relay, which starts (or joins) the
database's failover; the drill judges the failover's `recovery_status` and always leaves one working primary.

One pair serves the module: the drills that leave the old primary in charge run first, the one that
promotes the replica last. Two policy names point at it: `orders` (a human approves promotions) and
`orders-auto` (pre-approved promotion, no rejoin).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.drill_failover_watch import DATABASE_FAILOVER_RUNBOOK
from bench.pg_pair import OS_USER, PgPair, pg_pair
from starters.db_failover import failover_workflow_id
from starters.relay.config import RelayConfig
from starters.relay.deliver import deliver
from tests.drills.conftest import TOKEN, DrillStack
from tests.e2e.relaying import relaying
from tests.relay.conftest import alert, payload
from tests.support.policies import fast_policy
from tests.support.waiting import eventually
from workers.run import build_workers
from workflows.db_failover.guard import RUNBOOK
from workflows.drill import DrillWorkflow
from zerotouch.alerts import WebhookPayload
from zerotouch.drill_models import DRILL_WORKFLOW, DrillInput, drill_workflow_id
from zerotouch.names import ALL_QUEUES, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy
from zerotouch.recovery import DATABASE_FAILOVER_WORKFLOW, QUERY_RECOVERY_STATUS, RecoveryStatus, recovery_id
from zerotouch.settings import WorkerSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALERT = "PostgresPrimaryDown"


def _drill(name: str, database: str, expect: str, deadline: str, alert: bool = True) -> dict[str, Any]:
    drill: dict[str, Any] = {"name": name, "fault": "postgres_primary_stop", "target": f"postgres/{database}",
                             "expect": expect, "deadline": deadline}
    if alert:
        drill["alert"] = {"alertname": ALERT, "labels": {"database": database, "severity": "critical"}}
    return drill


DRILLS = [_drill("pg-escalated", "orders", "escalated", "60s"),
          _drill("pg-auto", "orders-auto", "auto_resolved", "90s"),
          _drill("pg-cancelled", "orders", "auto_resolved", "5m", alert=False)]  # no alert: nothing fails over


def _databases(pair: PgPair, cluster: str) -> dict[str, Any]:
    def server(which: str) -> dict[str, Any]:
        s = getattr(pair, which)
        return {"connection": f"{which}-{cluster}", "host": "127.0.0.1", "port": s.port, "data_directory": str(s.data),
                "os_user": OS_USER}
    shared = {"primary": server("primary"), "replica": server("replica"), "max_lag_bytes": 0, "probes": 2,
              "probe_interval": "200ms"}
    return {"orders": shared,
            "orders-auto": {**shared, "approvals": {"promote": False, "rejoin": False}, "rejoin": "none"}}


@pytest.fixture(scope="module")
def pair() -> Iterator[PgPair]:
    with pg_pair() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def drills(dev_env: WorkflowEnvironment, pair: PgPair,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DrillStack]:
    """tests/drills/conftest.py's stack, with the pair in recovery.databases and its DSNs in the workers' env."""
    workdir = tmp_path_factory.mktemp("pg-drills")
    cluster = f"p{uuid.uuid4().hex[:6]}"
    policy_path = fast_policy(workdir / "policy.yaml")
    document = yaml.safe_load(policy_path.read_text())
    document["drills"] = {"drills": DRILLS}
    document.setdefault("recovery", {})["databases"] = _databases(pair, cluster)
    document["risk"]["database_failover"] = "auto"  # orders-auto: promoted unattended (orders still asks)
    policy_path.write_text(yaml.safe_dump(document, sort_keys=False))
    policy = load_policy(policy_path)
    ledger_url = f"sqlite:///{workdir / 'ledger.db'}"
    with pytest.MonkeyPatch.context() as env:
        for which in ("primary", "replica"):
            env.setenv(f"ZEROTOUCH_PG_{which.upper()}_{cluster.upper()}_DSN", getattr(pair, which).dsn())
        async with relaying(dev_env, policy, token=TOKEN, cluster=cluster, service="zerotouch-pg-drills") as started:
            (workdir / "endpoints.json").write_text(json.dumps({"relay": started.relay_url}))
            (workdir / "relay-token").write_text(TOKEN)
            settings = WorkerSettings(kubernetes_url=started.sandbox.url, prometheus_url=None, ledger_url=ledger_url,
                                      policy_path=str(policy_path), state_dir=str(workdir))
            with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
                async with httpx.AsyncClient(timeout=10.0) as http, contextlib.AsyncExitStack() as stack:
                    for worker in build_workers(started.client, ALL_QUEUES, settings, http=http, executor=executor,
                                                cluster=cluster):
                        await stack.enter_async_context(worker)
                    yield DrillStack(started.client, started.sandbox, cluster, ledger_url, policy_path)


def serving(pair: PgPair) -> None:
    """The old primary is the one primary again: it takes writes, the replica streams them, no fence is left."""
    assert pair.primary.running() and pair.primary.value("SELECT pg_is_in_recovery()") is False
    pair.primary.execute("CREATE TABLE IF NOT EXISTS drill_writes (at timestamptz DEFAULT now())")
    pair.primary.execute("INSERT INTO drill_writes DEFAULT VALUES")
    assert pair.replica.value("SELECT pg_is_in_recovery()") is True, "never two primaries"
    assert not (pair.primary.data / "standby.signal").exists()
    pair.wait_streaming()


async def test_the_alert_starts_one_failover_a_repeat_joins_it_and_unknown_databases_start_none(
        drills: DrillStack) -> None:
    # A cluster with no workers: the failover stays where the relay left it, started and not yet run.
    cluster = f"q{uuid.uuid4().hex[:6]}"
    config = RelayConfig(cluster=cluster, databases=load_policy(drills.policy_path).recovery.databases)
    body = payload(alert(ALERT, database="orders"), alert(ALERT, database="payments"),
                   alert(ALERT, database="../etc"), alert(ALERT))
    wanted = recovery_id("database", cluster, "orders")
    handle = drills.client.get_workflow_handle(wanted)
    first = await deliver(drills.client, WebhookPayload.model_validate(body), config)
    try:
        started = await handle.describe()
        again = await deliver(drills.client, WebhookPayload.model_validate(body), config)  # Alertmanager repeats
        assert (await handle.describe()).run_id == started.run_id, "the repeat joined the running failover"
        assert wanted in first.incidents and wanted in again.incidents
        assert wanted == failover_workflow_id("orders", cluster), "the ID `zerotouch recovery` starts it under"
        assert started.workflow_type == DATABASE_FAILOVER_WORKFLOW
        for unknown in ("payments", "../etc"):  # no failover for a database the policy does not declare
            with pytest.raises(RPCError):
                await drills.client.get_workflow_handle(recovery_id("database", cluster, unknown)).describe()
        others = [i for i in first.incidents if i != wanted]
        assert len(others) >= 1 and all(ALERT in i for i in others), "unusable labels go to an incident, seen"
    finally:
        for workflow_id in {*first.incidents}:
            with contextlib.suppress(RPCError):
                await drills.client.get_workflow_handle(workflow_id).terminate("test over")


async def test_a_drill_cancelled_midway_with_no_failover_starts_its_primary_again(
        drills: DrillStack, pair: PgPair) -> None:
    """The cleanup when nothing failed over (no alert was delivered): the old primary serves again."""
    workflow_id = drill_workflow_id("pg-cancelled", datetime.now(UTC)) + "-cancel"
    handle = await drills.client.start_workflow(
        DRILL_WORKFLOW, DrillInput(name="pg-cancelled", cluster=drills.cluster), id=workflow_id,
        task_queue=queue_for(WORKFLOWS_QUEUE, drills.cluster))

    async def watching() -> bool:
        with contextlib.suppress(Exception):
            return bool(await handle.query(DrillWorkflow.stage) == "watching" and not pair.primary.running())
        return False

    await eventually(watching, timeout=60, what="the drill's primary stopped")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=60)
    serving(pair)


async def test_a_failover_that_asks_a_human_is_an_escalation_and_cleanup_restores_the_primary(
        drills: DrillStack, pair: PgPair) -> None:
    result = await drills.run("pg-escalated")
    failover = recovery_id("database", drills.cluster, "orders")
    assert result.incident_ids == [failover], "the relay routed the alert to the database's failover"
    assert result.passed and result.outcome == "escalated", result.model_dump_json(indent=1)
    assert result.detect_seconds is not None and result.actions == [], "nothing acted before a human said so"
    status = await drills.client.get_workflow_handle(failover).query(QUERY_RECOVERY_STATUS, result_type=RecoveryStatus)
    assert status.stage == "aborted" and "zerotouch-drill" in status.outcome, status.timeline
    assert any(e.step == "approve_promote" and e.outcome == "waiting" for e in status.timeline)
    serving(pair)


async def test_a_pre_approved_failover_promotes_the_replica_and_the_drill_auto_resolves(
        drills: DrillStack, pair: PgPair) -> None:
    assert DATABASE_FAILOVER_RUNBOOK == RUNBOOK, "a failed drill costs the runbook the failover's grants use"
    result = await drills.run("pg-auto")
    assert result.passed and result.outcome == "auto_resolved", result.model_dump_json(indent=1)
    assert result.cleaned_up and result.outside_target == []
    assert [a.split()[0] for a in result.actions][:3] == ["fence", "promote", "repoint"], result.actions
    assert result.detect_seconds is not None and result.first_action_seconds is not None
    assert result.recover_seconds is not None and result.first_action_seconds <= result.recover_seconds < 90
    # One primary: the promoted replica takes writes; the old one stays fenced (rejoin: none).
    assert pair.replica.value("SELECT pg_is_in_recovery()") is False
    pair.replica.execute("CREATE TABLE after_drill (note text)")
    pair.replica.execute("INSERT INTO after_drill VALUES ('written on the promoted replica')")
    assert not pair.primary.running() and (pair.primary.data / "standby.signal").exists()
