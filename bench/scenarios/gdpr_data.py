"""Scenario 10's data: a PostgreSQL server of its own, a million rows, mongomock, and the checks on them.

`load` fills `customers`, `orders` and two retention tables by generate_series (no row-by-row
inserts); `others` and `subjects_left` are the bench's own queries, independent of the product's
re-query, that prove the erasures touched the subjects and no one else; `engine_alone` and
`expire_all` call `PostgresSubjects` directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongomock
import psycopg
from psycopg import sql

from activities.gdpr_postgres import PostgresSubjects
from activities.pg_binaries import as_server_user, find_bin_dir
from bench.scenarios.gdpr_report import Expiry, Sizes
from zerotouch.gdpr import Store
from zerotouch.gdpr_models import Subject
from zerotouch.ports import free_port

CONNECTION, DATABASE, MONGO_DB = "bench-gdpr", "gdpr_bench", "shop"
COUNT_CAP = 100_000  # what `count_expired_rows` widens a dry run's batch to (the largest batch the map allows)
KEEP = timedelta(days=365)
ORDERS_EACH, EVENTS_EACH = 10, 3
SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL,
                        created_at timestamptz NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
                     item text NOT NULL, amount_cents integer NOT NULL, placed_at timestamptz NOT NULL);
"""
# The data map of the policy's gdpr section (MongoDB: mongomock, behind the same adapter).
STORES: dict[str, Any] = {
    "shop-db": {"kind": "postgres", "connection": CONNECTION, "database": DATABASE, "tables": {
        "customers": {"identity": {"email": "email"}},
        "orders": {"parent": {"table": "customers", "column": "customer_id"}}}},
    "events": {"kind": "mongodb", "connection": CONNECTION, "database": MONGO_DB, "tables": {
        "events": {"key": "_id", "identity": {"email": "user.email"}}}}}


def sizes(quick: bool) -> Sizes:
    if quick:
        return Sizes(customers=5_000, orders=50_000, events=10_000, subjects=1, retention_rows=50_000, recent_rows=500)
    return Sizes(customers=100_000, orders=1_000_000, events=100_000, subjects=3, retention_rows=1_000_000,
                 recent_rows=10_000)


class Server:
    """A PostgreSQL server of its own with default settings; as root it runs as `nobody`."""

    def __init__(self) -> None:
        self.bin = find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="zt-bench-gdpr-"))  # outside the bench's root-only directory
        self.prefix, self.port = as_server_user(), free_port()
        if self.prefix:
            shutil.chown(self.root, "nobody")

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self.prefix, *command], capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> Server:
        data = self.root / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")
        return self

    def dsn(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def stop(self, logs: Path) -> None:
        subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w",
                        "stop"], capture_output=True, timeout=120, check=False)
        with contextlib.suppress(OSError):
            shutil.copy(self.root / "server.log", logs / "postgres-server.log")
        shutil.rmtree(self.root, ignore_errors=True)


def load(server: Server, s: Sizes) -> tuple[float, str]:
    """The shop and the retention tables, by generate_series; its seconds and the server's version."""
    began = time.monotonic()
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        row = admin.execute("SHOW server_version").fetchone()
        version = str(row[0]).split()[0] if row else "unknown"
    with psycopg.connect(server.dsn(), autocommit=True) as db:
        db.execute(SCHEMA)
        db.execute("INSERT INTO customers SELECT g, 'Customer' || g || '@Shop.example', 'Customer ' || g, "
                   "now() - g * interval '1 minute' FROM generate_series(1, %s) AS g", [s.customers])
        # 7919 is prime and divides no size used here: every customer gets exactly orders/customers orders
        db.execute("INSERT INTO orders (customer_id, item, amount_cents, placed_at) SELECT 1 + (g::bigint * 7919) "
                   "%% %s, 'item-' || g %% 97, 500 + g %% 20000, now() - g * interval '1 second' "
                   "FROM generate_series(1, %s) AS g", [s.customers, s.orders])
        db.execute("CREATE INDEX ON customers (lower(email))")
        db.execute("CREATE INDEX ON orders (customer_id)")
        for batch in (1000, 10000):
            table = sql.Identifier(f"audit_b{batch}")
            db.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, email text NOT NULL, "
                               "created_at timestamptz NOT NULL)").format(table))
            # oldest first, as a log's ids run: the expired rows are the table's first million keys
            db.execute(sql.SQL("INSERT INTO {} (email, created_at) SELECT 'customer' || g %% 1000 || '@shop.example', "
                               "now() - interval '400 days' - (%s - g) * interval '1 second' "
                               "FROM generate_series(1, %s) AS g").format(table), [s.retention_rows] * 2)
            db.execute(sql.SQL("INSERT INTO {} (email, created_at) SELECT 'recent' || g || '@shop.example', "
                               "now() - g * interval '1 minute' FROM generate_series(1, %s) AS g").format(table),
                       [s.recent_rows])
            db.execute(sql.SQL("CREATE INDEX ON {} (created_at)").format(table))
        db.execute("VACUUM ANALYZE")
    return time.monotonic() - began, version


def fill_mongo(s: Sizes) -> tuple[mongomock.MongoClient[dict[str, Any]], float]:
    began = time.monotonic()
    mongo: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient(tz_aware=True)
    at = datetime.now(UTC)
    mongo[MONGO_DB]["events"].insert_many([
        {"user": {"email": f"Customer{1 + g // EVENTS_EACH}@Shop.example"}, "action": ("login", "view", "buy")[g % 3],
         "at": at - timedelta(seconds=g)} for g in range(s.events)])
    return mongo, time.monotonic() - began


def subject_ids(s: Sizes) -> list[int]:
    """Spread over the customers that have events too."""
    pool = min(s.customers, s.events // EVENTS_EACH)
    return [1 + (k * pool) // s.subjects + pool // (2 * s.subjects) for k in range(s.subjects)]


def email_of(customer: int) -> str:
    return f"customer{customer}@shop.example"  # as the subject types it: the stores hold it in another case


def others(server: Server, mongo: mongomock.MongoClient[dict[str, Any]], ids: list[int]) -> list[Any]:
    """Everyone else's rows as counts and sums (customers' contents hashed): equal before and after."""
    with psycopg.connect(server.dsn()) as db:
        customers = db.execute("SELECT count(*), sum(id), sum(hashtext(email || name)) FROM customers "
                               "WHERE id <> ALL(%s)", [ids]).fetchone()
        orders = db.execute("SELECT count(*), sum(id), sum(amount_cents) FROM orders WHERE customer_id <> ALL(%s)",
                            [ids]).fetchone()
    subjects = {email_of(i) for i in ids}
    kept = sum(1 for doc in mongo[MONGO_DB]["events"].find({}, {"user": 1})
               if doc["user"]["email"].lower() not in subjects)
    return [customers, orders, kept]


def subjects_left(server: Server, mongo: mongomock.MongoClient[dict[str, Any]], ids: list[int],
                  mongo_ids: list[int]) -> int:
    """The subjects' rows still anywhere, by queries of our own (not the product's re-query)."""
    with psycopg.connect(server.dsn()) as db:
        row = db.execute("SELECT (SELECT count(*) FROM customers WHERE id = ANY(%s) OR lower(email) = ANY(%s)) + "
                         "(SELECT count(*) FROM orders WHERE customer_id = ANY(%s))",
                         [ids, [email_of(i) for i in ids], ids]).fetchone()
    emails = {email_of(i) for i in mongo_ids}
    events = sum(1 for doc in mongo[MONGO_DB]["events"].find({}, {"user": 1}) if doc["user"]["email"].lower() in emails)
    return int(row[0] if row else 0) + events


def engine_alone(server: Server, customers: list[int]) -> dict[str, list[float]]:
    """`PostgresSubjects` called directly (no workflow, vault or mongomock beside it) for other subjects."""
    engine, store = PostgresSubjects(dsn_for=lambda _ref: server.dsn("postgres")), Store.model_validate(
        STORES["shop-db"])
    times: dict[str, list[float]] = {"resolve": [], "export": [], "erase": [], "re-query": []}
    for customer in customers:
        subject, marks = Subject(email=email_of(customer)), [time.monotonic()]
        manifest = engine.resolve(store, subject)
        marks.append(time.monotonic())
        engine.export(store, manifest)
        marks.append(time.monotonic())
        engine.erase(store, manifest, lambda value: hashlib.sha256(value.encode()).hexdigest())
        marks.append(time.monotonic())
        engine.count(store, subject)
        marks.append(time.monotonic())
        for step, began, ended in zip(times, marks, marks[1:], strict=False):
            times[step].append(ended - began)
    return times


def expire_all(server: Server, batch: int) -> Expiry:
    engine, table = PostgresSubjects(dsn_for=lambda _ref: server.dsn("postgres")), f"audit_b{batch}"
    retention = {"column": "created_at", "keep": "365d", "batch": batch}
    store = Store.model_validate({"kind": "postgres", "connection": CONNECTION, "database": DATABASE, "tables": {
        table: {"identity": {"email": "email"}, "retention": retention}}})
    counting = Store.model_validate({**store.model_dump(), "tables": {
        table: {"identity": {"email": "email"}, "retention": {**retention, "batch": COUNT_CAP}}}})
    before, done = datetime.now(UTC) - KEEP, Expiry(batch=batch)
    began = time.monotonic()
    done.count = engine.expire(counting, table, before, dry_run=True)
    done.count_seconds, began = time.monotonic() - began, time.monotonic()
    while (rows := engine.expire(store, table, before, dry_run=False)) > 0:
        done.rows, done.batches = done.rows + rows, done.batches + 1
    done.seconds = time.monotonic() - began
    with psycopg.connect(server.dsn()) as db:
        left = db.execute(sql.SQL("SELECT count(*) FILTER (WHERE created_at < %s), count(*) FILTER (WHERE "
                                  "created_at >= %s) FROM {}").format(sql.Identifier(table)), [before] * 2).fetchone()
    done.left_expired, done.left_recent = (int(left[0]), int(left[1])) if left else (-1, -1)
    return done
