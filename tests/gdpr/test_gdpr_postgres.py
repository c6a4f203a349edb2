"""PostgresSubjects against a throwaway PostgreSQL holding a small shop: find, export, erase, expire a subject."""

from __future__ import annotations

import hashlib
import hmac
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from temporalio.exceptions import ApplicationError

from activities.gdpr_postgres import Manifest, PostgresSubjects
from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from tests.support.waiting import wait_until
from zerotouch import activity_errors as errors
from zerotouch.gdpr import Erasure, ParentLink, Retention, Store, TableMap
from zerotouch.gdpr_models import Subject
from zerotouch.ports import free_port

ALICE = Subject(email="alice@example.org", user_id="u-alice")
BOB = Subject(email="bob@example.net", user_id="u-bob")
PERSONAL = ("alice", "liddell", "bob@")  # no error may carry any of these
_KEY = b"test-pseudonym-key"

OLD, RECENT = datetime(2024, 6, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 6, 1, tzinfo=UTC)

_SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text, user_id text, name text NOT NULL, created_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id), total numeric(10, 2),
                     placed_at date, note bytea);
CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), sku text, qty int);
CREATE TABLE reviews (id int PRIMARY KEY, customer_id int REFERENCES customers (id) ON DELETE SET NULL,
                      author_email text, author_name text, body text, rating int);
CREATE TABLE loyalty (id int PRIMARY KEY, member text, points int);
CREATE TABLE events (id bigint PRIMARY KEY, user_id text, kind text, payload jsonb, created_at timestamptz NOT NULL);
"""
SEED: dict[str, list[dict[str, Any]]] = {
    "customers": [
        {"id": 1, "email": "Alice@Example.org", "user_id": "u-alice", "name": "Alice Liddell",
         "created_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)},
        {"id": 2, "email": "bob@example.net", "user_id": "u-bob", "name": "Bob", "created_at": None},
        # a second account of the same person, found by user id only
        {"id": 3, "email": None, "user_id": "u-alice", "name": "A. Liddell", "created_at": None},
    ],
    "orders": [
        {"id": 10, "customer_id": 1, "total": "12.50", "placed_at": date(2025, 2, 1), "note": b"\x00gift"},
        {"id": 11, "customer_id": 1, "total": "3.00", "placed_at": None, "note": None},
        {"id": 12, "customer_id": 2, "total": "7.25", "placed_at": None, "note": None},
        {"id": 13, "customer_id": 3, "total": "1.00", "placed_at": None, "note": None},
    ],
    "order_items": [
        {"id": 100, "order_id": 10, "sku": "a", "qty": 1}, {"id": 101, "order_id": 10, "sku": "b", "qty": 2},
        {"id": 102, "order_id": 11, "sku": "c", "qty": 1}, {"id": 103, "order_id": 12, "sku": "d", "qty": 4},
        {"id": 104, "order_id": 13, "sku": "e", "qty": 1},
    ],
    "reviews": [
        # found through the customer only: once the customer is gone, only the manifest still finds it
        {"id": 200, "customer_id": 1, "author_email": None, "author_name": "Alice L.", "body": "great", "rating": 5},
        {"id": 201, "customer_id": None, "author_email": "ALICE@example.org", "author_name": "Alice", "body": "meh",
         "rating": 3},
        {"id": 202, "customer_id": 2, "author_email": "bob@example.net", "author_name": "Bob", "body": "ok",
         "rating": 4},
    ],
    "loyalty": [{"id": 400, "member": "u-alice", "points": 10}, {"id": 401, "member": "u-bob", "points": 20}],
    "events": [
        {"id": 300, "user_id": "u-alice", "kind": "login", "payload": {"ip": "10.0.0.1"}, "created_at": OLD},
        {"id": 301, "user_id": "u-alice", "kind": "view", "payload": None, "created_at": RECENT},
        {"id": 302, "user_id": "u-bob", "kind": "login", "payload": None, "created_at": RECENT},
        {"id": 303, "user_id": "u-alice", "kind": "buy", "payload": [1, 2], "created_at": OLD},
    ],
}
ALICE_ROWS = {"customers": [1, 3], "orders": [10, 11, 13], "order_items": [100, 101, 102, 104], "reviews": [200, 201],
              "loyalty": [400], "events": [300, 301, 303]}
REVIEW_FIELDS = Erasure(method="fields", fields={"author_email": "pseudonymise", "author_name": "pseudonymise",
                                                 "body": "null"})


def pseudonymise(value: str) -> str:
    return hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()


def shop(database: str, **changes: TableMap) -> Store:
    tables = {
        "customers": TableMap(identity={"email": "email", "user_id": "user_id"},
                              export=["id", "email", "name", "created_at"]),
        "orders": TableMap(parent=ParentLink(table="customers", column="customer_id")),
        "order_items": TableMap(parent=ParentLink(table="orders", column="order_id")),
        "reviews": TableMap(identity={"email": "author_email"}, erase=REVIEW_FIELDS,
                            parent=ParentLink(table="customers", column="customer_id")),
        "loyalty": TableMap(parent=ParentLink(table="customers", column="member", parent_key="user_id")),
        "events": TableMap(identity={"user_id": "user_id"},
                           retention=Retention(column="created_at", keep=timedelta(days=30), batch=10)),
    }
    return Store(kind="postgres", connection="shop", database=database, tables=tables | changes)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        with running_postgres(max_connections=30) as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


@dataclass
class Shop:
    server: Postgres
    database: str
    store: Store
    subjects: PostgresSubjects

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(dbname=self.database), autocommit=True)

    def rows(self, table: str) -> dict[int, tuple[Any, ...]]:
        with self.connect() as connection:
            return {row[0]: row for row in connection.execute(f"SELECT * FROM {table} ORDER BY id")}  # noqa: S608


@pytest.fixture
def seeded(postgres: Postgres) -> Shop:
    database = postgres.create_database("gdpr")
    with psycopg.connect(postgres.dsn(dbname=database), autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{database}" SET timezone = \'UTC\'')
        connection.execute(_SCHEMA)
        for table, rows in SEED.items():
            for row in rows:
                values = [Jsonb(v) if isinstance(v, dict | list) else v for v in row.values()]
                columns, marks = ", ".join(row), ", ".join(["%s"] * len(row))
                connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)  # noqa: S608
    return Shop(postgres, database, shop(database), PostgresSubjects(dsn_for=lambda _reference: postgres.dsn()))


def _failure(call: Any) -> ApplicationError:
    """The ApplicationError ``call`` raises, checked to carry no personal data in any message its printed
    traceback shows (chained exceptions included; the indented source lines are this file's code)."""
    with pytest.raises(ApplicationError) as raised:
        call()
    printed = "".join(line for line in traceback.format_exception(raised.value) if not line.startswith(" ")).lower()
    assert not [word for word in PERSONAL if word in printed], printed
    return raised.value


def test_resolve_finds_exactly_the_subjects_rows_across_the_parent_chain(seeded: Shop) -> None:
    assert seeded.subjects.resolve(seeded.store, ALICE) == ALICE_ROWS
    by_email_only = seeded.subjects.resolve(seeded.store, Subject(email="ALICE@example.org"))
    assert by_email_only["customers"] == [1] and by_email_only["order_items"] == [100, 101, 102]
    assert seeded.subjects.count(seeded.store, BOB) == 6


def test_resolve_treats_an_id_of_the_wrong_type_as_no_match(seeded: Shop) -> None:
    store = shop(seeded.database, orders=TableMap(identity={"user_id": "customer_id"}))  # an integer column
    assert seeded.subjects.resolve(store, Subject(user_id="u-alice"))["orders"] == []
    assert seeded.subjects.resolve(store, Subject(user_id="2"))["orders"] == [12]


def test_export_equals_the_seeded_rows(seeded: Shop) -> None:
    exported = seeded.subjects.export(seeded.store, seeded.subjects.resolve(seeded.store, ALICE))
    assert exported["customers"] == [
        {"id": 1, "email": "Alice@Example.org", "name": "Alice Liddell", "created_at": "2025-01-02T03:04:05+00:00"},
        {"id": 3, "email": None, "name": "A. Liddell", "created_at": None},
    ]
    assert exported["orders"] == [
        {"id": 10, "customer_id": 1, "total": "12.50", "placed_at": "2025-02-01", "note": "AGdpZnQ="},
        {"id": 11, "customer_id": 1, "total": "3.00", "placed_at": None, "note": None},
        {"id": 13, "customer_id": 3, "total": "1.00", "placed_at": None, "note": None},
    ]
    for table in ("order_items", "reviews", "loyalty"):
        assert exported[table] == [row for row in SEED[table] if row["id"] in ALICE_ROWS[table]]
    assert exported["events"] == [
        {**row, "created_at": row["created_at"].isoformat()} for row in SEED["events"]
        if row["id"] in ALICE_ROWS["events"]
    ]


def test_erase_goes_children_first_and_a_rerun_erases_nothing(seeded: Shop) -> None:
    bob_before = {table: {k: v for k, v in seeded.rows(table).items() if k not in ALICE_ROWS[table]}
                  for table in SEED}
    manifest = seeded.subjects.resolve(seeded.store, ALICE)

    # orders and order_items reference their parents without ON DELETE CASCADE: a parent first would fail
    assert seeded.subjects.erase(seeded.store, manifest, pseudonymise) == {
        table: len(keys) for table, keys in ALICE_ROWS.items()}

    reviews = seeded.rows("reviews")
    assert reviews[200] == (200, None, None, pseudonymise("Alice L."), None, 5)
    assert reviews[201] == (201, None, pseudonymise("ALICE@example.org"), pseudonymise("Alice"), None, 3)
    assert seeded.subjects.erase(seeded.store, manifest, pseudonymise) == dict.fromkeys(ALICE_ROWS, 0)
    assert seeded.subjects.count(seeded.store, ALICE) == 0
    assert seeded.subjects.count(seeded.store, BOB) == 6
    assert {table: seeded.rows(table) for table in SEED} == {
        table: {**rows, **({200: reviews[200], 201: reviews[201]} if table == "reviews" else {})}
        for table, rows in bob_before.items()}


def test_a_manifest_resolved_before_a_partial_erasure_still_erases_the_rest(seeded: Shop) -> None:
    manifest = seeded.subjects.resolve(seeded.store, ALICE)
    # the reviews step "failed": everything else, the customers included, is gone
    seeded.subjects.erase(seeded.store, {t: keys for t, keys in manifest.items() if t != "reviews"}, pseudonymise)
    assert seeded.subjects.resolve(seeded.store, ALICE)["reviews"] == [201]  # review 200 is unreachable now

    resumed = seeded.subjects.erase(seeded.store, manifest, pseudonymise)
    assert resumed == {**dict.fromkeys(ALICE_ROWS, 0), "reviews": 2}
    assert seeded.rows("reviews")[200][3] == pseudonymise("Alice L.")
    assert seeded.subjects.count(seeded.store, ALICE) == 0


def _add_old_events(shop_: Shop) -> None:
    with shop_.connect() as connection:
        connection.execute("INSERT INTO events SELECT i, 'u-' || i, 'old', '{\"n\": 1}', %s "
                           "FROM generate_series(1000, 1024) AS i", [OLD])
        connection.execute("INSERT INTO events VALUES (1100, NULL, 'anonymous', NULL, %s)", [OLD])


def test_expire_deletes_in_batches_and_a_dry_run_changes_nothing(seeded: Shop) -> None:
    _add_old_events(seeded)  # 28 old rows in all, 3 recent
    before = seeded.rows("events")
    assert seeded.subjects.expire(seeded.store, "events", CUTOFF, dry_run=True) == 10
    assert seeded.rows("events") == before

    assert seeded.subjects.expire(seeded.store, "events", CUTOFF, dry_run=False) == 10
    assert sorted(set(before) - set(seeded.rows("events"))) == [300, 303, *range(1000, 1008)]  # by key
    batches = [seeded.subjects.expire(seeded.store, "events", CUTOFF, dry_run=False) for _ in range(3)]
    assert batches == [10, 8, 0]
    assert sorted(seeded.rows("events")) == [301, 302]


def test_expire_skips_a_row_another_transaction_holds(seeded: Shop) -> None:
    _add_old_events(seeded)
    with seeded.connect() as holder, holder.transaction():
        holder.execute("SELECT id FROM events WHERE id = 300 FOR UPDATE")
        assert seeded.subjects.expire(seeded.store, "events", CUTOFF, dry_run=False) == 10
    assert 300 in seeded.rows("events") and 1008 not in seeded.rows("events")


def test_expire_pseudonymises_fields_in_batches(seeded: Shop) -> None:
    _add_old_events(seeded)
    retention = Retention(column="created_at", keep=timedelta(days=30), batch=10,
                          erase=Erasure(method="fields", fields={"user_id": "pseudonymise", "payload": "null"}))
    store = shop(seeded.database, events=TableMap(identity={"user_id": "user_id"}, retention=retention))
    # row 1100 has nothing left to erase, so 27 of the 28 old rows count
    assert seeded.subjects.expire(store, "events", CUTOFF, dry_run=True, pseudonymise=pseudonymise) == 10
    batches = [seeded.subjects.expire(store, "events", CUTOFF, dry_run=False, pseudonymise=pseudonymise)
               for _ in range(4)]
    assert batches == [10, 10, 7, 0]
    assert seeded.subjects.expire(store, "events", CUTOFF, dry_run=True, pseudonymise=pseudonymise) == 0
    events = seeded.rows("events")
    assert events[300][1:4] == (pseudonymise("u-alice"), "login", None)
    assert events[301] == (301, "u-alice", "view", None, RECENT)


def test_pseudonymise_refuses_a_column_that_is_not_text(seeded: Shop) -> None:
    store = shop(seeded.database, reviews=TableMap(
        identity={"email": "author_email"}, erase=Erasure(method="fields", fields={"rating": "pseudonymise"})))
    before = seeded.rows("reviews")
    error = _failure(lambda: seeded.subjects.erase(store, {"reviews": [201]}, pseudonymise))
    assert error.type == errors.INVALID_POLICY and error.non_retryable
    assert "rating" in str(error) and "text" in str(error)
    assert seeded.rows("reviews") == before


def test_missing_names_absent_tables_and_columns(seeded: Shop) -> None:
    assert seeded.subjects.missing(seeded.store) == []
    store = shop(seeded.database,
                 customers=TableMap(identity={"email": "email"}, export=["id", "phone"]),
                 refunds=TableMap(identity={"email": "email"}),
                 **{"archive.old_orders": TableMap(identity={"email": "email"})})
    assert seeded.subjects.missing(store) == ["archive.old_orders", "customers.phone", "refunds"]


def test_errors_name_the_table_never_a_value(seeded: Shop) -> None:
    # nulling a NOT NULL column: PostgreSQL's own message quotes the whole row, e-mail address included
    names = Store(kind="postgres", connection="shop", database=seeded.database, tables={
        "customers": TableMap(identity={"email": "email"}, erase=Erasure(method="fields", fields={"name": "null"}))})
    error = _failure(lambda: seeded.subjects.erase(names, {"customers": [1]}, pseudonymise))
    assert error.type == errors.INVALID_POLICY and "customers" in str(error)

    absent: Manifest = {"refunds": [1]}
    error = _failure(lambda: seeded.subjects.erase(shop(seeded.database, refunds=TableMap(identity={"email": "e"})),
                                                   absent, pseudonymise))
    assert error.type == errors.INVALID_POLICY and "refunds" in str(error)

    error = _failure(lambda: seeded.subjects.resolve(shop(seeded.database, refunds=TableMap(identity={"email": "e"})),
                                                     ALICE))
    assert error.type == errors.INVALID_POLICY and "refunds" in str(error)

    nowhere = PostgresSubjects(dsn_for=lambda _reference: f"host=127.0.0.1 port={free_port()} user=postgres")
    error = _failure(lambda: nowhere.resolve(seeded.store, ALICE))
    assert error.type == errors.DATABASE_UNAVAILABLE and not error.non_retryable

    def unknown(reference: str) -> str:
        raise KeyError(f"no PostgreSQL connection {reference!r}: set ZEROTOUCH_PG_SHOP_DSN")

    assert _failure(lambda: PostgresSubjects(dsn_for=unknown).count(seeded.store, ALICE)).type == errors.INVALID_TARGET
    assert seeded.rows("customers")[1][3] == "Alice Liddell"


def _scans(shop_: Shop, table: str) -> tuple[int, int]:
    with shop_.connect() as connection:
        row = connection.execute("SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                                 "WHERE relname = %s", [table]).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _no_backend(shop_: Shop, application: str) -> bool:
    """True once no session of ``application`` is left: a backend flushes its statistics before it goes."""
    with shop_.connect() as connection:
        row = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                 [application]).fetchone()
    return row is not None and row[0] == 0


def test_resolve_and_erase_use_indexes_on_a_large_table(seeded: Shop) -> None:
    with psycopg.connect(seeded.server.dsn(dbname=seeded.database), autocommit=True,
                         application_name="gdpr-test-setup") as connection:
        connection.execute("ALTER TABLE events SET (autovacuum_enabled = false)")
        connection.execute("INSERT INTO events SELECT i, 'u-' || (i %% 20000), 'bulk', NULL, %s "
                           "FROM generate_series(10000, 109999) AS i", [RECENT])
        connection.execute("CREATE INDEX events_user_id ON events (user_id)")
        connection.execute("ANALYZE events")
    wait_until(lambda: _no_backend(seeded, "gdpr-test-setup"), timeout=10)
    seq_before, idx_before = _scans(seeded, "events")

    manifest = seeded.subjects.resolve(seeded.store, ALICE)
    assert manifest["events"] == [300, 301, 303]
    assert seeded.subjects.erase(seeded.store, manifest, pseudonymise)["events"] == 3

    wait_until(lambda: _no_backend(seeded, "zerotouch-gdpr"), timeout=10)
    seq_after, idx_after = _scans(seeded, "events")
    assert seq_after == seq_before, "a sequential scan of the 100k-row table: the key or identity index went unused"
    assert idx_after > idx_before
