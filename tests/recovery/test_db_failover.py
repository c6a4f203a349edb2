"""A PostgreSQL failover end to end: a real primary and streaming replica, the dev server, every worker, the sandbox.

The primary is stopped for real; the workflow must refuse (and escalate, touching nothing) when the
replica's lag is over the bound, and otherwise fence, promote, repoint a connection file and a
Kubernetes Secret, keep every canary row, and rejoin the old primary as a standby via pg_rewind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from bench.pg_pair import OS_USER, PgPair, pg_pair
from sandbox import SandboxCluster
from starters.db_failover import start_database_failover
from tests.support.policies import fast_policy
from tests.support.waiting import eventually
from tests.support.zt import running_workers
from zerotouch.ledger_store import open_ledger
from zerotouch.models import ApproveInput
from zerotouch.pg_canary import CanaryWriter
from zerotouch.policy import Policy, load_policy
from zerotouch.recovery import QUERY_RECOVERY_STATUS, DatabaseFailoverInput, RecoveryStatus

NAME, NAMESPACE = "orders", "shop"


@dataclass
class FailoverScene:
    client: Client
    cluster: str
    pair: PgPair
    policy: Policy
    connection_file: Path
    secret: str
    core: Any
    ledger_url: str

    async def start(self, *, dry_run: bool = False) -> WorkflowHandle[Any, Any]:
        return await start_database_failover(self.client, DatabaseFailoverInput(
            database=NAME, cluster=self.cluster, requested_by="alice", reason="primary down (test)", dry_run=dry_run))

    def secret_address(self) -> tuple[str, str]:
        data = self.core.read_namespaced_secret(self.secret, NAMESPACE).data
        return base64.b64decode(data["host"]).decode(), base64.b64decode(data["port"]).decode()


@pytest.fixture
def failover_pair() -> Iterator[PgPair]:
    with pg_pair() as pair:
        yield pair


def _target(pair: PgPair, cluster: str, connection_file: Path, secret: str, **overrides: Any) -> dict[str, Any]:
    def server(which: str) -> dict[str, Any]:
        s = getattr(pair, which)
        return {"connection": f"{which}-{cluster}", "host": "127.0.0.1", "port": s.port,
                "data_directory": str(s.data), "os_user": OS_USER}
    return {"primary": server("primary"), "replica": server("replica"), "max_lag_bytes": 0,
            "probes": 2, "probe_interval": "200ms",
            "repoint": [{"kind": "connection_file", "path": str(connection_file)},
                        {"kind": "kubernetes_secret", "namespace": NAMESPACE, "name": secret}],
            "canary": {"table": "zt_canary", "max_gap": "5s"}, **overrides}


@contextlib.asynccontextmanager
async def failover_scene(env: WorkflowEnvironment, sandbox: SandboxCluster, pair: PgPair, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> AsyncIterator[FailoverScene]:
    cluster = f"f{uuid.uuid4().hex[:8]}"
    for which in ("primary", "replica"):
        monkeypatch.setenv(f"ZEROTOUCH_PG_{which.upper()}_{cluster.upper()}_DSN", getattr(pair, which).dsn())
    connection_file, secret = tmp_path / "consumers" / "orders.json", f"orders-db-{cluster}"
    document = load_policy(fast_policy(tmp_path / "policy.yaml")).model_dump(mode="json", by_alias=True)
    document["recovery"]["databases"] = {NAME: _target(pair, cluster, connection_file, secret, **overrides)}
    policy = Policy.model_validate(document)
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    core: Any = k8s.CoreV1Api(k8s.ApiClient(configuration))  # plain dicts, as kubectl would
    old = {"host": "127.0.0.1", "port": str(pair.primary.port)}
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": secret, "namespace": NAMESPACE}, "data": {
        key: base64.b64encode(value.encode()).decode() for key, value in old.items()}})
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    async with running_workers(env.client, cluster, kubernetes_url=sandbox.url, policy=policy, ledger_url=ledger_url):
        yield FailoverScene(env.client, cluster, pair, policy, connection_file, secret, core, ledger_url)


async def status_of(handle: WorkflowHandle[Any, Any]) -> RecoveryStatus | None:
    raw = await handle.query(QUERY_RECOVERY_STATUS)
    return RecoveryStatus.model_validate(raw) if raw else None


async def wait_approval(handle: WorkflowHandle[Any, Any], step: str) -> RecoveryStatus:
    async def probe() -> RecoveryStatus | None:
        status = await status_of(handle)
        return status if status and status.approval == "pending" and any(
            e.step == f"approve_{step}" and e.outcome == "waiting" for e in status.timeline) else None
    return await eventually(probe, timeout=90, interval=0.2, what=f"the {step} approval request")


async def result_of(handle: WorkflowHandle[Any, Any]) -> RecoveryStatus:
    return RecoveryStatus.model_validate(await handle.result())


def canary_rows(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute("SELECT count(*) FROM zt_canary").fetchone()
    return int(row[0]) if row else 0


def assert_untouched(scene: FailoverScene) -> None:
    """Nothing changed: the replica still replays, the old primary has no fence, consumers point at it."""
    assert scene.pair.replica.value("SELECT pg_is_in_recovery()") is True
    assert not (scene.pair.primary.data / "standby.signal").exists()
    assert not scene.connection_file.exists()
    assert scene.secret_address() == ("127.0.0.1", str(scene.pair.primary.port))


async def test_lag_over_the_bound_refuses_escalates_and_touches_nothing(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, failover_pair: PgPair, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = failover_pair
    async with failover_scene(dev_env, sandbox, pair, tmp_path, monkeypatch, max_lag_bytes=4096) as scene:
        # Real lag: the replica receives but does not replay what the primary writes next.
        pair.replica.execute("SELECT pg_wal_replay_pause()")
        pair.primary.execute("CREATE TABLE late AS SELECT g AS id, repeat('x', 100) AS pad "
                             "FROM generate_series(1, 5000) g")
        pair.primary.stop("fast")
        status = await result_of(await scene.start())
        assert status.stage == "refused", status
        assert "over the bound" in status.outcome and "nothing was changed" in status.outcome
        lag = next(e for e in status.timeline if e.step == "measure_lag")
        assert "bytes behind" in lag.detail and "replay is paused" in lag.detail, lag
        assert status.incident_id
        await scene.client.get_workflow_handle(status.incident_id).describe()  # the escalation exists
        assert not any(e.step in ("fence", "promote", "repoint") for e in status.timeline)
        assert_untouched(scene)


async def test_failover_within_the_bound_fences_promotes_repoints_keeps_the_canary_and_rejoins(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, failover_pair: PgPair, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = failover_pair
    async with failover_scene(dev_env, sandbox, pair, tmp_path, monkeypatch) as scene:
        with CanaryWriter(pair.primary.dsn(), "zt_canary", interval=0.1) as canary:
            await eventually(_async(lambda: canary.written >= 10), timeout=30, what="10 canary rows")
        written = canary_rows(pair.primary.dsn())
        pair.wait_streaming()
        pair.primary.stop("fast")
        handle = await scene.start()
        await wait_approval(handle, "promote")
        assert pair.replica.value("SELECT pg_is_in_recovery()") is True, "promoted before approval"
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("approve", ApproveInput(by="alice"))  # four eyes: alice asked
        await handle.execute_update("approve", ApproveInput(by="bob", note="primary host lost"))
        status = await wait_approval(handle, "rejoin")
        # Failed over: fenced, promoted, both consumers repointed, writes go through, no canary row lost.
        assert (pair.primary.data / "standby.signal").exists() and not pair.primary.running()
        assert pair.replica.value("SELECT pg_is_in_recovery()") is False
        assert json.loads(scene.connection_file.read_text())["port"] == pair.replica.port
        assert scene.secret_address() == ("127.0.0.1", str(pair.replica.port))
        pair.replica.execute("CREATE TABLE after_failover (note text)")
        pair.replica.execute("INSERT INTO after_failover VALUES ('written on the new primary')")
        assert canary_rows(pair.replica.dsn()) == written, "canary rows lost in the failover"
        verify = next(e for e in status.timeline if e.step == "verify")
        assert verify.outcome == "ok" and "continuous" in verify.detail, verify
        await handle.execute_update("approve", ApproveInput(by="bob", note="rejoin"))
        status = await result_of(handle)
        assert status.stage == "recovered", status
        assert "streams from it" in status.outcome
        # The old primary is a standby of the new one and has what was written after the failover.
        assert pair.primary.value("SELECT pg_is_in_recovery()") is True
        assert pair.primary.value("SELECT sender_port FROM pg_stat_wal_receiver") == pair.replica.port

        async def replicated() -> bool:
            try:
                return bool(pair.primary.value("SELECT count(*) FROM after_failover"))
            except psycopg.Error:
                return False
        await eventually(replicated, timeout=30, what="the new primary's row on the rejoined old primary")
        steps = [e.step for e in status.timeline]
        assert steps.index("fence") < steps.index("promote") < steps.index("repoint") < steps.index("rejoin")
        # The ledger has the run, each step with the roles and WAL positions before and after it.
        [record] = open_ledger(scene.ledger_url).get(handle.id)
        assert record.kind == "database_failover" and record.outcome == "resolved"
        assert record.evidence is not None
        recorded = {step["step"]: step for step in record.evidence["steps"]}
        assert recorded["promote"]["before"]["role"] == "standby" and recorded["promote"]["after"]["role"] == "primary"
        assert recorded["fence"]["after"]["refuses_connections"] == "True"
        assert recorded["measure_lag"]["before"]["primary_end_lsn"] == recorded["measure_lag"]["before"][
            "replica_replay_lsn"]
        assert sorted({h.actor for h in record.humans}) == ["bob"]


async def test_a_dry_run_plans_and_changes_nothing(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, failover_pair: PgPair, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with failover_scene(dev_env, sandbox, failover_pair, tmp_path, monkeypatch) as scene:
        failover_pair.primary.stop("fast")
        status = await result_of(await scene.start(dry_run=True))
        assert status.stage == "planned" and status.dry_run, status
        assert any("promote the replica" in line for line in status.plan), status.plan
        assert any("pg_rewind" in line for line in status.plan), status.plan
        assert_untouched(scene)


async def test_an_approval_timeout_aborts_and_never_approves(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, failover_pair: PgPair, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    overrides = {"approvals": {"timeout": "2s"}}
    async with failover_scene(dev_env, sandbox, failover_pair, tmp_path, monkeypatch, **overrides) as scene:
        failover_pair.primary.stop("fast")
        started = time.monotonic()
        status = await result_of(await scene.start())
        assert status.stage == "aborted" and status.approval == "timed out", status
        assert time.monotonic() - started >= 2
        assert status.incident_id
        assert_untouched(scene)


def _async(check: Any) -> Any:
    async def probe() -> bool:
        return bool(check())
    return probe
