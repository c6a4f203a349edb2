"""DataRetentionWorkflow on the dev server: real PostgreSQL, mongomock, the real ledger.

The data worker runs the real retention activities against a throwaway PostgreSQL and a
mongomock client (no MongoDB server installs here; tests/gdpr/test_gdpr_mongodb.py repeats the
engine against a real one when ZEROTOUCH_TEST_MONGODB_URL is set). Only the policy and the
Governor's answers are stand-ins, so observe mode and the kill switch can be scripted. The dev
server, not the time-skipping one: rows are old or new by the wall clock, and the time-skipping
server jumps its clock (by years) whenever it sees nothing but timers, even while an activity runs.
"""

from __future__ import annotations

import base64
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongomock
import psycopg
import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from activities.gdpr_retention import RetentionActivities
from activities.ledger import LedgerActivities
from starters.schedules.reconcile import build_schedule, workflow_input
from tests.support.policies import fast_policy
from tests.support.postgres import Postgres, running_postgres
from workers.run import activity_methods, workflow_runner
from workflows.gdpr_retention import DataRetentionWorkflow
from zerotouch import activity_names as names
from zerotouch.gdpr_retention import DATA_RETENTION_WORKFLOW, DataRetentionArgs, DataRetentionInput, RetentionRecord
from zerotouch.governor_models import DecisionCode, GrantDecision
from zerotouch.governor_policy import GrantCall
from zerotouch.ledger_models import LedgerRecord
from zerotouch.ledger_store import open_ledger
from zerotouch.models import PolicyRequest
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy, load_policy
from zerotouch.schedules import ScheduleDeclaration

KEY_ENV = {"ZEROTOUCH_GDPR_KEY": base64.b64encode(bytes(range(32))).decode()}
NOW = datetime.now(UTC)
OLD, NEW, ANCIENT = NOW - timedelta(days=90), NOW - timedelta(days=2), NOW - timedelta(days=400)
SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text, name text, created_at timestamptz NOT NULL);
CREATE TABLE events (id int PRIMARY KEY, customer_id int REFERENCES customers (id), kind text,
                     created_at timestamptz NOT NULL);
"""
OLD_CUSTOMERS, NEW_CUSTOMERS = range(1, 8), range(8, 10)  # 7 past a year (batch 3: 3 batches), 2 recent
OLD_EVENTS, NEW_EVENTS = range(100, 110), range(110, 113)  # 10 past 30 days (batch 4: 3 batches), 3 recent
OLD_LOGS, NEW_LOGS = range(1, 6), range(6, 8)  # 5 past 30 days (batch 2: 3 batches), 2 recent
PERSONAL = [f"person{n}@example.org" for n in range(1, 10)] + [f"Person Number{n}" for n in range(1, 10)]


def gdpr_stores(database: str, *, missing_table: bool = False) -> dict[str, Any]:
    tables: dict[str, Any] = {
        "customers": {"identity": {"email": "email"}, "retention": {
            "column": "created_at", "keep": "365d", "batch": 3,
            "erase": {"method": "fields", "fields": {"email": "pseudonymise", "name": "null"}}}},
        "events": {"parent": {"table": "customers", "column": "customer_id"},
                   "retention": {"column": "created_at", "keep": "30d", "batch": 4}},
    }
    if missing_table:
        tables["audit"] = {"identity": {"email": "email"}, "retention": {"column": "at", "keep": "30d"}}
    return {
        "shop-db": {"kind": "postgres", "connection": "main", "database": database, "tables": tables},
        "events-db": {"kind": "mongodb", "connection": "main", "database": "events", "tables": {
            "activity_logs": {"key": "_id", "identity": {"email": "actor.email"},
                              "retention": {"column": "createdAt", "keep": "30d", "batch": 2}}}},
    }


def retention_policy(tmp_path: Path, database: str, **options: Any) -> Policy:
    document = load_policy(fast_policy(tmp_path / "policy.yaml")).model_dump(mode="json", by_alias=True)
    document["preapproved_classes"] = ["data_deletion"]
    document["gdpr"] = {"stores": gdpr_stores(database, **options)}
    return Policy.model_validate(document)


@dataclass
class Governor:
    """The Governor's answers, in order (the last repeats), and how often it was asked."""

    answers: list[DecisionCode] = field(default_factory=lambda: ["granted"])
    asked: int = 0

    def decide(self, call: GrantCall) -> GrantDecision:
        code = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        assert call.request.risk_class == "data_retention" and call.request.namespace == "gdpr"
        return GrantDecision(request_id=call.request.request_id, granted=code == "granted", code=code,
                             reason=f"stand-in: {code}", retry_after_seconds=1 if code == "paused" else None,
                             decided_at=datetime.now(UTC))


@dataclass
class Scene:
    env: WorkflowEnvironment
    postgres: Postgres
    database: str
    mongo: Any
    governor: Governor
    ledger_url: str
    cluster: str

    async def run(self, *, dry_run: bool = False, stores: list[str] | None = None,
                  batches_per_run: int = 1000) -> tuple[RetentionRecord, str]:
        workflow_id = f"retention-{uuid.uuid4().hex[:8]}"
        params = DataRetentionInput(schedule="nightly", cluster=self.cluster, batches_per_run=batches_per_run,
                                    arguments=DataRetentionArgs(stores=stores or [], dry_run=dry_run))
        handle = await self.env.client.start_workflow(DATA_RETENTION_WORKFLOW, params, id=workflow_id,
                                                      task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))
        record = RetentionRecord.model_validate(await handle.result())
        history = (await handle.fetch_history()).to_json()
        return record, history

    def ledger(self, workflow_id: str) -> LedgerRecord:
        records = open_ledger(self.ledger_url).get(workflow_id)
        assert len(records) == 1, records
        return records[0]

    def rows(self, table: str) -> dict[int, tuple[Any, ...]]:
        with psycopg.connect(self.postgres.dsn(dbname=self.database)) as connection:
            found = connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608 (a fixed name)
        return {row[0]: tuple(row[1:]) for row in found}

    def logs(self) -> set[int]:
        return {document["_id"] for document in self.mongo["events"]["activity_logs"].find()}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


def seed(postgres: Postgres) -> tuple[str, Any]:
    database = postgres.create_database("retention")
    with psycopg.connect(postgres.dsn(dbname=database), autocommit=True) as connection:
        connection.execute(SCHEMA)
        for n in [*OLD_CUSTOMERS, *NEW_CUSTOMERS]:
            connection.execute("INSERT INTO customers VALUES (%s, %s, %s, %s)", [
                n, f"person{n}@example.org", f"Person Number{n}", ANCIENT if n in OLD_CUSTOMERS else NEW])
        for n in [*OLD_EVENTS, *NEW_EVENTS]:
            connection.execute("INSERT INTO events VALUES (%s, %s, %s, %s)",
                               [n, 1 + n % 9, "view", OLD if n in OLD_EVENTS else NEW])
    mongo: Any = mongomock.MongoClient(tz_aware=True)
    mongo["events"]["activity_logs"].insert_many([
        {"_id": n, "actor": {"email": f"person{n}@example.org"}, "createdAt": OLD if n in OLD_LOGS else NEW}
        for n in [*OLD_LOGS, *NEW_LOGS]])
    return database, mongo


@contextlib.asynccontextmanager
async def scene(env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path, governor: Governor | None = None,
                **options: Any) -> AsyncIterator[Scene]:
    database, mongo = seed(postgres)
    policy = retention_policy(tmp_path, database, **options)
    governor = governor or Governor()
    cluster, ledger_url = f"r{uuid.uuid4().hex[:8]}", f"sqlite:///{tmp_path / 'ledger.db'}"

    @activity.defn(name=names.LOAD_POLICY)
    async def load(_: PolicyRequest) -> Policy:
        return policy

    @activity.defn(name=names.REQUEST_GRANT)
    async def grant(call: GrantCall) -> GrantDecision:
        return governor.decide(call)

    data = RetentionActivities(postgres=PostgresSubjects(dsn_for=lambda _ref: postgres.dsn()),
                               mongodb=MongoSubjects(client_for=lambda _ref: mongo), environ=KEY_ENV)
    client = env.client
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(client, task_queue=queue_for(WORKFLOWS_QUEUE, cluster), workflows=[DataRetentionWorkflow],
                          workflow_runner=workflow_runner()), \
                Worker(client, task_queue=queue_for(DATA_QUEUE, cluster), activities=activity_methods(data),
                       activity_executor=executor), \
                Worker(client, task_queue=queue_for(OBSERVE_QUEUE, cluster), activity_executor=executor,
                       activities=[load, grant, *activity_methods(LedgerActivities(store=open_ledger(ledger_url)))]):
            yield Scene(env, postgres, database, mongo, governor, ledger_url, cluster)


def counts(record: RetentionRecord) -> dict[str, tuple[int, int]]:
    """table → (rows, batches)"""
    return {f"{t.store_name}/{t.table}": (t.rows, t.batches) for t in record.tables}


def assert_untouched(s: Scene) -> None:
    assert set(s.rows("events")) == {*OLD_EVENTS, *NEW_EVENTS}
    assert all(row[0] == f"person{n}@example.org" for n, row in s.rows("customers").items())
    assert s.logs() == {*OLD_LOGS, *NEW_LOGS}


async def test_expired_rows_go_in_bounded_batches_newer_rows_stay_and_the_ledger_gets_the_counts(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path) as s:
        # 4 batches per workflow run: the pass's 12 calls (9 batches and 3 "none left") take three runs
        record, history = await s.run(batches_per_run=4)
        assert record.outcome == "complete" and record.mode == "erase" and record.runs == 3
        assert counts(record) == {"shop-db/events": (10, 3), "shop-db/customers": (7, 3),
                                  "events-db/activity_logs": (5, 3)}
        # children before parents
        assert [t.table for t in record.tables if t.store_name == "shop-db"] == ["events", "customers"]
        assert s.governor.asked == 1  # once per pass, not per run of it
        assert set(s.rows("events")) == set(NEW_EVENTS)
        customers = s.rows("customers")
        for n in OLD_CUSTOMERS:
            email, name, _ = customers[n]
            assert re.fullmatch(r"[0-9a-f]{64}", email) and name is None
        assert all(customers[n][:2] == (f"person{n}@example.org", f"Person Number{n}") for n in NEW_CUSTOMERS)
        assert s.logs() == set(NEW_LOGS)

        ledger = s.ledger(record.workflow_id)
        assert ledger.kind == "retention" and ledger.outcome == "resolved"
        assert ledger.evidence is not None and ledger.evidence["dry_run"] is False
        assert {(t["store_name"], t["table"], t["rows"]) for t in ledger.evidence["tables"]} == {
            ("shop-db", "events", 10), ("shop-db", "customers", 7), ("events-db", "activity_logs", 5)}
        kept = ledger.model_dump_json() + history
        assert not [value for value in PERSONAL if value in kept], "personal data in the ledger or the history"

        again, _ = await s.run()  # nothing is left: a second pass erases nothing
        assert counts(again) == {"shop-db/events": (0, 0), "shop-db/customers": (0, 0),
                                 "events-db/activity_logs": (0, 0)}


async def test_a_dry_run_counts_every_expired_row_and_changes_nothing(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path) as s:
        record, _ = await s.run(dry_run=True)
        assert record.outcome == "dry_run" and record.dry_run
        # the whole count (count_expired_rows), not one batch's
        assert {name: rows for name, (rows, _) in counts(record).items()} == {
            "shop-db/events": 10, "shop-db/customers": 7, "events-db/activity_logs": 5}
        assert s.governor.asked == 0  # nothing is erased: nothing to ask
        assert_untouched(s)
        ledger = s.ledger(record.workflow_id)
        assert ledger.outcome == "closed" and ledger.evidence is not None and ledger.evidence["dry_run"] is True


async def test_one_store_only(dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path) as s:
        record, _ = await s.run(stores=["events-db"])
        assert counts(record) == {"events-db/activity_logs": (5, 3)}
        assert set(s.rows("events")) == {*OLD_EVENTS, *NEW_EVENTS}


async def test_observe_mode_counts_what_would_go_and_erases_nothing(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path, Governor(["observe"])) as s:
        record, _ = await s.run()
        assert record.outcome == "observe" and record.mode == "observe" and not record.dry_run
        assert record.rows == 22 and "observe mode" in record.reason
        assert_untouched(s)


async def test_the_kill_switch_holds_the_run_until_it_is_lifted(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path, Governor(["paused", "paused", "granted"])) as s:
        record, _ = await s.run()
        assert s.governor.asked == 3
        assert record.finished_at - record.started_at >= timedelta(seconds=2)  # two waits of the retry-after
        assert record.outcome == "complete" and record.rows == 22
        assert set(s.rows("events")) == set(NEW_EVENTS)


async def test_a_refusal_erases_nothing_and_is_recorded(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path, Governor(["excluded_class"])) as s:
        record, _ = await s.run()
        assert record.outcome == "refused" and "excluded_class" in record.reason
        assert_untouched(s)
        assert s.ledger(record.workflow_id).outcome == "closed"


async def test_a_table_missing_in_the_database_stops_only_that_table_and_fails_the_run(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path, missing_table=True) as s:
        workflow_id = f"retention-{uuid.uuid4().hex[:8]}"
        handle = await dev_env.client.start_workflow(
            DATA_RETENTION_WORKFLOW, DataRetentionInput(cluster=s.cluster), id=workflow_id,
            task_queue=queue_for(WORKFLOWS_QUEUE, s.cluster))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "RetentionFailed"
        assert "shop-db/audit" in cause.message and "policy check --against" in cause.message
        assert set(s.rows("events")) == set(NEW_EVENTS) and s.logs() == set(NEW_LOGS)  # the others ran
        ledger = s.ledger(workflow_id)
        assert ledger.outcome == "escalated" and ledger.evidence is not None
        assert {t["table"]: bool(t["error"]) for t in ledger.evidence["tables"]} == {
            "audit": True, "events": False, "customers": False, "activity_logs": False}


async def test_an_unknown_store_fails_the_run_naming_it(
        dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path) -> None:
    async with scene(dev_env, postgres, tmp_path) as s:
        with pytest.raises(WorkflowFailureError) as failed:
            await s.run(stores=["nope"])
        assert isinstance(failed.value.cause, ApplicationError) and "['nope']" in failed.value.cause.message
        assert_untouched(s)


def test_the_schedule_declaration_validates_and_reconcile_builds_its_input() -> None:
    declaration = ScheduleDeclaration.model_validate({
        "name": "gdpr-retention", "workflow": "DataRetentionWorkflow", "cron": "@daily",
        "arguments": {"stores": ["shop-db"], "dry_run": True}})
    built = workflow_input(declaration, "eu")
    assert built == DataRetentionInput(schedule="gdpr-retention", cluster="eu",
                                       arguments=DataRetentionArgs(stores=["shop-db"], dry_run=True))
    action = build_schedule(declaration, "eu").action
    assert action.workflow == DATA_RETENTION_WORKFLOW  # type: ignore[attr-defined]
    assert ScheduleDeclaration.model_validate({"name": "all", "workflow": "DataRetentionWorkflow",
                                               "interval": "1d"}).arguments == {}
    for bad, why in (({"dry_run": "maybe"}, "dry_run"), ({"stores": ["Not A Label"]}, "lower-case DNS labels"),
                     ({"store": ["shop-db"]}, "Extra inputs")):
        with pytest.raises(ValueError, match=why):
            ScheduleDeclaration.model_validate({"name": "bad", "workflow": "DataRetentionWorkflow", "cron": "@daily",
                                                "arguments": bad})
