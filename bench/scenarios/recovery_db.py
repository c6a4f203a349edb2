"""Scenario 11, PostgreSQL failover: primary stop → a consumer's first successful write, the rejoin, rows lost.

Each run: a fresh primary with a streaming replica (`bench/pg_pair.py`), a canary writer
(`zerotouch.pg_canary`, 10 rows a second) on the primary, then the primary is stopped (``pg_ctl stop
-m fast``) and `DatabaseFailoverWorkflow` started at once. A consumer reads the connection file the
failover rewrites and tries an INSERT every 50 ms; the time to its first success is the failover
time. The promotion is approved by a second approver as soon as it is asked (what a human adds to it
is not measured); the rejoin is pre-approved and runs to the workflow's result.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from temporalio.client import Client, WorkflowHandle

from activities.pg_binaries import find_bin_dir
from bench.pg_pair import OS_USER, PgPair, pg_pair
from bench.scenarios.recovery_env import in_process_workers, recovery_policy
from bench.scenarios.recovery_report import Failover
from starters.db_failover import start_database_failover
from zerotouch.models import ApproveInput
from zerotouch.pg_canary import CanaryWriter
from zerotouch.recovery import QUERY_RECOVERY_STATUS, DatabaseFailoverInput, RecoveryStatus

NAME = "orders"
CANARY_ROWS = 20
UNUSED_KUBERNETES = "http://127.0.0.1:9"  # the workers want one; a connection file needs none
APPROVAL_DEADLINE = 120.0  # generous: two shared cores


class Consumer(threading.Thread):
    """Writes through whatever the connection file names; remembers when the first write after `arm` worked."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.first_write = path, 0.0
        self.armed, self.stopping = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set() and not self.first_write:
            if self.armed.is_set():
                address = json.loads(self.path.read_text())
                try:
                    with psycopg.connect(host=address["host"], port=address["port"], user="postgres",
                                         dbname="postgres", connect_timeout=1, autocommit=True) as connection:
                        connection.execute("INSERT INTO zt_canary DEFAULT VALUES ON CONFLICT DO NOTHING")
                    self.first_write = time.monotonic()
                except psycopg.Error:
                    pass  # the old primary is down and the file not yet rewritten: try again
            self.stopping.wait(0.05)


def _target(pair: PgPair, cluster: str, connection_file: Path) -> dict[str, Any]:
    def server(which: str) -> dict[str, Any]:
        s = getattr(pair, which)
        return {"connection": f"{which}-{cluster}", "host": "127.0.0.1", "port": s.port,
                "data_directory": str(s.data), "os_user": OS_USER}
    return {"primary": server("primary"), "replica": server("replica"), "max_lag_bytes": 0, "probes": 2,
            "probe_interval": "200ms", "repoint": [{"kind": "connection_file", "path": str(connection_file)}],
            "canary": {"table": "zt_canary"}, "approvals": {"rejoin": False}}


async def _approve_when_asked(handle: WorkflowHandle[Any, Any]) -> None:
    deadline = time.monotonic() + APPROVAL_DEADLINE
    while time.monotonic() < deadline:
        raw = await handle.query(QUERY_RECOVERY_STATUS)
        status = RecoveryStatus.model_validate(raw) if raw else None
        if status and status.approval == "pending":
            await handle.execute_update("approve", ApproveInput(by="bob", note="bench"))
            return
        if status and status.stage in ("refused", "aborted", "failed"):
            raise RuntimeError(f"the failover ended {status.stage} before asking: {status.outcome}")
        await asyncio.sleep(0.02)
    raise RuntimeError(f"the failover did not ask for the promotion's approval in {APPROVAL_DEADLINE:.0f} s")


def _canary(pair: PgPair) -> tuple[int, Any]:
    """Canary rows on the primary, and the newest one's time."""
    with psycopg.connect(pair.primary.dsn(), autocommit=True) as connection:
        row = connection.execute("SELECT count(*), max(written_at) FROM zt_canary").fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def _failover(client: Client, pair: PgPair, workdir: Path, variables: list[str]) -> Failover:
    cluster = f"b{uuid.uuid4().hex[:8]}"
    for which in ("primary", "replica"):
        variable = f"ZEROTOUCH_PG_{which.upper()}_{cluster.upper()}_DSN"
        os.environ[variable] = getattr(pair, which).dsn()  # the in-process workers resolve the connections by it
        variables.append(variable)
    connection_file = workdir / "orders.json"
    connection_file.write_text(json.dumps({"host": "127.0.0.1", "port": pair.primary.port}))
    policy = recovery_policy(workdir / "policy.yaml", {"databases": {NAME: _target(pair, cluster, connection_file)}})
    async with in_process_workers(client, cluster, kubernetes_url=UNUSED_KUBERNETES, policy=policy,
                                  ledger_url=f"sqlite:///{workdir}/ledger.db"):
        with CanaryWriter(pair.primary.dsn(), "zt_canary", interval=0.1) as canary:
            deadline = time.monotonic() + 60
            while canary.written < CANARY_ROWS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the canary wrote {canary.written} rows in 60 s: {canary.last_error}")
                await asyncio.sleep(0.05)
        written, newest = await asyncio.to_thread(_canary, pair)
        await asyncio.to_thread(pair.wait_streaming)
        consumer = Consumer(connection_file)
        consumer.start()
        try:
            stopped = time.monotonic()
            await asyncio.to_thread(pair.primary.stop, "fast")
            consumer.armed.set()
            handle = await start_database_failover(client, DatabaseFailoverInput(
                database=NAME, cluster=cluster, requested_by="alice", reason="bench"))
            await _approve_when_asked(handle)
            status = RecoveryStatus.model_validate(await handle.result())
            rejoined = time.monotonic()
            while not consumer.first_write and time.monotonic() < rejoined + 30:
                await asyncio.sleep(0.02)
        finally:
            consumer.stopping.set()
    kept = int(await asyncio.to_thread(pair.replica.value, "SELECT count(*) FROM zt_canary WHERE written_at <= %s",
                                       (newest,)))
    wrong = [] if status.stage == "recovered" else [f"ended {status.stage}: {status.outcome}"]
    if not consumer.first_write:
        wrong.append("the consumer never wrote to the new primary")
    standby = await asyncio.to_thread(_standby_of, pair)
    if standby != pair.replica.port:
        wrong.append(f"the old primary does not stream from the new one ({standby})")
    measured = next((e.detail for e in status.timeline if e.step == "measure_lag"), "")
    behind = re.search(r"(\d+) bytes behind", measured)
    lag = f"{behind.group(1)} bytes" if behind else f"not measured ({measured[:80]})"
    return Failover(failover=consumer.first_write - stopped if consumer.first_write else 0.0,
                    rejoined=rejoined - stopped, written=written, rows_lost=written - kept, lag=lag, wrong=wrong)


def _standby_of(pair: PgPair) -> Any:
    """The port the old primary's WAL receiver streams from, or why there is none."""
    try:
        if pair.primary.value("SELECT pg_is_in_recovery()") is not True:
            return "not in recovery"
        return pair.primary.value("SELECT sender_port FROM pg_stat_wal_receiver")
    except psycopg.Error as error:
        return f"{type(error).__name__}: {error}"


async def one_failover(client: Client, workdir: Path) -> Failover:
    """One failover on a fresh primary + replica, both stopped and removed afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    variables: list[str] = []
    try:
        with pg_pair() as pair:
            return await _failover(client, pair, workdir, variables)
    finally:
        for variable in variables:
            os.environ.pop(variable, None)


def server_version() -> str:
    """`postgres --version` of the binaries the pair runs."""
    done = subprocess.run([str(find_bin_dir() / "postgres"), "--version"], capture_output=True, text=True,
                          timeout=30, check=False)
    found = re.search(r"\(PostgreSQL\) (\S+)", done.stdout) if done.returncode == 0 else None
    return found.group(1) if found else "unknown"
