"""Data-subject requests end to end: a real dev server, real PostgreSQL, the request vault, the ledger.

MongoDB is mongomock behind the same narrow adapter (no server installs here). An access request
exports exactly the seeded rows; an erasure removes them everywhere, children before parents,
leaves the other subject untouched, proves itself by re-query, suppresses the subject and writes
a receipt to the hash-chained ledger. No e-mail address or name of a seeded subject appears in any
history, the ledger, or the logs.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mongomock
import psycopg
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gdpr import GdprActivities
from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from tests.rotation.leaks import assert_absent
from tests.support.policies import fast_policy
from tests.support.postgres import Postgres, running_postgres
from workers.clients import postgres_dsn_for
from workers.run import activity_methods, build_workers
from zerotouch.gdpr import DSR_WORKFLOW, dsr_workflow_id
from zerotouch.gdpr_models import DsrInput, DsrReceipt, Subject, VaultRef
from zerotouch.gdpr_vault import RequestVault
from zerotouch.ledger_store import open_ledger
from zerotouch.models import ApproveInput
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy, load_policy
from zerotouch.settings import WorkerSettings

KEY_ENV = "ZT_TEST_GDPR_KEY"
ALICE = ("alice.subject@example.test", "Alice Subject-" + uuid.uuid4().hex[:6])
BOB = ("bob.other@example.test", "Bob Other-" + uuid.uuid4().hex[:6])
SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, item text NOT NULL);
"""


@dataclass
class Shop:
    server: Postgres
    database: str
    mongo: mongomock.MongoClient[dict[str, Any]]

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        with psycopg.connect(self.server.dsn(dbname=self.database)) as connection:
            return {table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608
                    for table in ("customers", "orders")}

    def events_of(self, email: str) -> int:
        return self.mongo["shop"]["events"].count_documents({"user.email": email})


@pytest.fixture
def shop() -> Iterator[Shop]:
    with running_postgres() as server:
        database = server.create_database("shop")
        with psycopg.connect(server.dsn(dbname=database), autocommit=True) as connection:
            connection.execute(SCHEMA)
            for email, name in (ALICE, BOB):
                row = connection.execute("INSERT INTO customers (email, name) VALUES (%s, %s) RETURNING id",
                                         (email, name)).fetchone()
                assert row is not None
                for item in ("book", "lamp"):
                    connection.execute("INSERT INTO orders (customer_id, item) VALUES (%s, %s)", (row[0], item))
        mongo: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient(tz_aware=True)
        mongo["shop"]["events"].insert_many([{"user": {"email": email}, "action": action}
                                             for email, _ in (ALICE, BOB) for action in ("login", "view", "buy")])
        yield Shop(server, database, mongo)


def policy_for(tmp_path: Path, connection: str, storage: Path) -> Policy:
    document = load_policy(fast_policy(tmp_path / "policy.yaml")).model_dump(mode="json", by_alias=True)
    document["gdpr"] = {"grace": "2s", "storage": str(storage), "key_env": KEY_ENV, "stores": {
        "shop-db": {"kind": "postgres", "connection": connection, "database": "placeholder", "tables": {
            "customers": {"identity": {"email": "email"}},
            "orders": {"parent": {"table": "customers", "column": "customer_id"}}}},
        "events": {"kind": "mongodb", "connection": connection, "database": "shop", "tables": {
            "events": {"key": "_id", "identity": {"email": "user.email"}}}}}}
    return Policy.model_validate(document)


@contextlib.asynccontextmanager
async def workers(client: Client, cluster: str, policy: Policy, shop: Shop, tmp_path: Path) -> AsyncIterator[Path]:
    """zerotouch's workers; the data worker's MongoDB is mongomock. Yields the ledger's path."""
    policy_path, ledger = tmp_path / "workers-policy.json", tmp_path / "ledger.db"
    policy_path.write_text(policy.model_dump_json(by_alias=True))
    settings = WorkerSettings(kubernetes_url=None, prometheus_url=None, policy_path=str(policy_path),
                              ledger_url=f"sqlite:///{ledger}", state_dir=str(tmp_path))
    data = activity_methods(GdprActivities(postgres=PostgresSubjects(dsn_for=postgres_dsn_for),
                                           mongodb=MongoSubjects(client_for=lambda _ref: shop.mongo),
                                           state_dir=tmp_path))
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, (WORKFLOWS_QUEUE, OBSERVE_QUEUE), settings, http=http,
                                        executor=executor, cluster=cluster):
                await stack.enter_async_context(worker)
            await stack.enter_async_context(Worker(client, task_queue=queue_for(DATA_QUEUE, cluster),
                                                   activities=data, activity_executor=executor))
            yield ledger


async def file(client: Client, policy: Policy, cluster: str, tmp_path: Path, kind: str) -> WorkflowHandle[Any, Any]:
    request_id = f"req-{uuid.uuid4().hex[:10]}"
    vault = RequestVault.open(VaultRef(storage=policy.gdpr.storage, key_env=KEY_ENV), tmp_path)
    pseudonym = vault.record_subject(request_id, Subject(email=ALICE[0].upper()))  # as the subject typed it
    return await client.start_workflow(
        DSR_WORKFLOW, DsrInput(request_id=request_id, kind=kind, subject=pseudonym,  # type: ignore[arg-type]
                               requested_by="alice-portal", verification="e-mail link clicked",
                               received_at=datetime.now(UTC), cluster=cluster),
        id=dsr_workflow_id(request_id, cluster), task_queue=queue_for(WORKFLOWS_QUEUE, cluster))


async def test_export_then_erasure_across_both_stores_with_a_receipt_and_no_personal_data_anywhere(
        dev_env: WorkflowEnvironment, shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cluster = f"d{uuid.uuid4().hex[:8]}"
    connection = f"dsr-{cluster}"
    suffix = connection.upper().replace("-", "_")
    monkeypatch.setenv(f"ZEROTOUCH_PG_{suffix}_DSN", shop.server.dsn(dbname=shop.database))
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    policy = policy_for(tmp_path, connection, tmp_path / "vault")
    policy.gdpr.stores["shop-db"].database = shop.database
    client = dev_env.client
    before = shop.rows()
    async with workers(client, cluster, policy, shop, tmp_path) as ledger:
        access = await file(client, policy, cluster, tmp_path, "access")
        await _approve(access, by="bob")
        exported = DsrReceipt.model_validate(await access.result())
        erasure = await file(client, policy, cluster, tmp_path, "erasure")
        await _approve(erasure, by="carol")
        erased = DsrReceipt.model_validate(await erasure.result())
    assert exported.outcome == "complete" and erased.outcome == "complete", (exported, erased)
    vault = RequestVault.open(VaultRef(storage=policy.gdpr.storage, key_env=KEY_ENV), tmp_path)
    copy: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for store in ("shop-db", "events"):
        [path] = (tmp_path / "vault" / "exports" / exported.request_id).glob(f"{store}*.bin")
        copy[store] = vault.read_export(str(path))
    assert [(row["email"], row["name"]) for row in copy["shop-db"]["customers"]] == [ALICE]
    assert sorted(row["item"] for row in copy["shop-db"]["orders"]) == ["book", "lamp"]
    assert sorted(doc["action"] for doc in copy["events"]["events"]) == ["buy", "login", "view"]
    listed = (tmp_path / "vault" / "exports" / exported.request_id / "manifest.json").read_text()
    assert '"rows":3' in listed.replace(" ", "") and ALICE[0] not in listed
    after = shop.rows()
    assert after["customers"] == [row for row in before["customers"] if row[1] == BOB[0]]
    assert len(after["orders"]) == 2 and shop.events_of(ALICE[0]) == 0 and shop.events_of(BOB[0]) == 3
    assert {r.store_name: (r.matched, r.erased, r.requery_matches) for r in erased.stores} == {
        "shop-db": (3, 3, 0), "events": (3, 3, 0)}
    assert erased.subject in vault.suppressed()
    kept = open_ledger(f"sqlite:///{ledger}")
    assert [record.kind for record in kept.all()].count("dsr_receipt") == 2
    assert kept.verify().ok
    personal = [*ALICE, *BOB, ALICE[0].upper()]
    histories = {}
    for handle in (access, erasure):
        history = await handle.fetch_history()
        histories[handle.id] = b"".join(event.SerializeToString() for event in history.events)
    assert_absent(histories, personal, "history")
    assert_absent({"ledger": ledger.read_bytes()}, personal, "ledger")
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert_absent({"logs": logged.encode()}, personal, "logs")


async def _approve(handle: WorkflowHandle[Any, Any], by: str) -> None:
    deadline = 60.0
    loop = __import__("asyncio").get_running_loop()
    end = loop.time() + deadline
    while True:
        status = await handle.query("status")
        if status and status.get("state") == "awaiting_approval":
            break
        assert loop.time() < end, f"never awaiting approval: {status}"
        await __import__("asyncio").sleep(0.1)
    await handle.execute_update("approve", ApproveInput(by=by))
