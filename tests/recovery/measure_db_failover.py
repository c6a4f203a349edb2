"""`python -m tests.recovery.measure_db_failover [--runs N]`: primary stop to first successful write; rows lost.

Each run: a fresh primary with a streaming replica (`tests/recovery/pg_pair.py`), a canary writer
(`zerotouch.pg_canary`, 10 rows a second) on the primary, then the primary is stopped (``pg_ctl stop
-m fast``) and `DatabaseFailoverWorkflow` started at once on a dev server with every worker in this
process. A consumer reads the connection file the failover rewrites and tries an INSERT every 50 ms;
the time to its first success is the failover time. The promotion is approved by a second approver
as soon as it is asked (what a human adds to it is not measured); the rejoin is measured apart.
Rows lost = canary rows committed on the old primary minus those on the new one.
It lives beside the tests (not in bench/) because it runs on their PostgreSQL pair and workers,
and the benchmarks may not import the tests (the import contract).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from starters.db_failover import start_database_failover
from tests.recovery.pg_pair import OS_USER, PgPair, pg_pair
from tests.support.policies import fast_policy
from tests.support.zt import running_workers
from zerotouch.binaries import temporal_cli
from zerotouch.models import ApproveInput
from zerotouch.names import SEARCH_ATTRIBUTES
from zerotouch.pg_canary import CanaryWriter
from zerotouch.policy import Policy, load_policy
from zerotouch.ports import free_port
from zerotouch.recovery import QUERY_RECOVERY_STATUS, DatabaseFailoverInput, RecoveryStatus
from zerotouch.temporal import data_converter

NAME = "orders"
UNUSED_KUBERNETES = "http://127.0.0.1:9"  # the workers want one; a connection file needs none


class Consumer(threading.Thread):
    """Writes through whatever the connection file names; remembers when the first write after `arm` worked."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.armed_at, self.first_write = path, 0.0, 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set() and not self.first_write:
            if self.armed_at:
                address = json.loads(self.path.read_text())
                try:
                    with psycopg.connect(host=address["host"], port=address["port"], user="postgres",
                                         dbname="postgres", connect_timeout=1, autocommit=True) as connection:
                        connection.execute("INSERT INTO zt_canary DEFAULT VALUES ON CONFLICT DO NOTHING")
                    self.first_write = time.monotonic()
                except psycopg.Error:
                    pass
            self.stopping.wait(0.05)


def _policy(pair: PgPair, cluster: str, workdir: Path) -> Policy:
    document = load_policy(fast_policy(workdir / "policy.yaml")).model_dump(mode="json", by_alias=True)

    def server(which: str) -> dict[str, Any]:
        s = getattr(pair, which)
        return {"connection": f"{which}-{cluster}", "host": "127.0.0.1", "port": s.port,
                "data_directory": str(s.data), "os_user": OS_USER}
    document["recovery"]["databases"] = {NAME: {
        "primary": server("primary"), "replica": server("replica"), "probes": 2, "probe_interval": "200ms",
        "repoint": [{"kind": "connection_file", "path": str(workdir / "orders.json")}],
        "canary": {"table": "zt_canary"}, "approvals": {"rejoin": False}}}
    return Policy.model_validate(document)


async def _approve_when_asked(handle: WorkflowHandle[Any, Any]) -> None:
    while True:
        raw = await handle.query(QUERY_RECOVERY_STATUS)
        if raw and RecoveryStatus.model_validate(raw).approval == "pending":
            await handle.execute_update("approve", ApproveInput(by="bob", note="bench"))
            return
        await asyncio.sleep(0.02)


async def one_run(env: WorkflowEnvironment) -> dict[str, float]:
    cluster = f"b{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as scratch, pg_pair() as pair:
        workdir = Path(scratch)
        for which in ("primary", "replica"):
            os.environ[f"ZEROTOUCH_PG_{which.upper()}_{cluster.upper()}_DSN"] = getattr(pair, which).dsn()
        (workdir / "orders.json").write_text(json.dumps({"host": "127.0.0.1", "port": pair.primary.port}))
        policy = _policy(pair, cluster, workdir)
        async with running_workers(env.client, cluster, kubernetes_url=UNUSED_KUBERNETES, policy=policy):
            with CanaryWriter(pair.primary.dsn(), "zt_canary", interval=0.1) as canary:
                while canary.written < 20:
                    await asyncio.sleep(0.05)
            written = int(pair.primary.value("SELECT count(*) FROM zt_canary"))
            consumer = Consumer(workdir / "orders.json")
            consumer.start()
            pair.wait_streaming()
            stopped = time.monotonic()
            await asyncio.to_thread(pair.primary.stop, "fast")
            consumer.armed_at = time.monotonic()
            handle = await start_database_failover(env.client, DatabaseFailoverInput(
                database=NAME, cluster=cluster, requested_by="alice", reason="bench"))
            await _approve_when_asked(handle)
            while not consumer.first_write:
                await asyncio.sleep(0.02)
            status = RecoveryStatus.model_validate(await handle.result())
            rejoined = time.monotonic()
            consumer.stopping.set()
            assert status.stage == "recovered", status
            # every row but the consumer's one write came from the old primary
            kept = int(pair.replica.value("SELECT count(*) FROM zt_canary")) - 1
    return {"failover_s": consumer.first_write - stopped, "rejoined_s": rejoined - stopped,
            "rows_lost": float(written - kept)}


async def main(runs: int) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(),
                                                search_attributes=SEARCH_ATTRIBUTES, data_converter=data_converter(),
                                                port=free_port())
    try:
        results = [await one_run(env) for _ in range(runs)]
    finally:
        await env.shutdown()
    for key in ("failover_s", "rejoined_s", "rows_lost"):
        values = [r[key] for r in results]
        print(f"{key}: median {statistics.median(values):.2f}, min {min(values):.2f}, max {max(values):.2f} "
              f"({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.recovery.measure_db_failover", description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
