"""Erased subjects stay erased: a backup taken before an erasure is restored, and re-applying the
suppression list erases the subject again, leaving every other row as it was (real PostgreSQL)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from click.testing import CliRunner
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from activities.gdpr_suppression import SuppressionActivities
from cli.errors import UsageError
from cli.gdpr_reapply import reapply
from tests.support.postgres import Postgres, PostgresUnavailable, postgres_bin, running_postgres
from zerotouch import activity_errors as errors
from zerotouch.gdpr import Erasure, ParentLink, Store, TableMap
from zerotouch.gdpr_models import Subject, VaultRef
from zerotouch.gdpr_suppression_models import ReapplyStep
from zerotouch.gdpr_vault import RequestVault

KEY = bytes(range(32))
KEY_ENV = "ZEROTOUCH_TEST_GDPR_KEY"
ALICE = Subject(email="alice@example.org", user_id="u-alice")
PERSONAL = ("alice", "liddell", "u-alice")  # what no result or output may carry

_SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text, user_id text, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id), total numeric(10, 2));
CREATE TABLE reviews (id int PRIMARY KEY, customer_id int REFERENCES customers (id) ON DELETE SET NULL,
                      author_email text, body text);
INSERT INTO customers VALUES (1, 'Alice@Example.org', 'u-alice', 'Alice Liddell'),
                             (2, 'bob@example.net', 'u-bob', 'Bob'), (3, NULL, 'u-alice', 'A. Liddell');
INSERT INTO orders VALUES (10, 1, 12.50), (11, 1, 3.00), (12, 2, 7.25), (13, 3, 1.00);
INSERT INTO reviews VALUES (200, 1, 'alice@example.org', 'great'), (201, NULL, 'ALICE@example.org', 'meh'),
                           (202, 2, 'bob@example.net', 'ok');
"""
ALICE_ROWS = 2 + 3 + 2  # customers 1 and 3, their orders 10, 11, 13, reviews 200 and 201


def shop(database: str) -> Store:
    return Store(kind="postgres", connection="shop", database=database, tables={
        "customers": TableMap(identity={"email": "email", "user_id": "user_id"}),
        "orders": TableMap(parent=ParentLink(table="customers", column="customer_id")),
        # kept for the shop's statistics, the author's identity replaced by the keyed hash
        "reviews": TableMap(identity={"email": "author_email"},
                            parent=ParentLink(table="customers", column="customer_id"),
                            erase=Erasure(method="fields", fields={"author_email": "pseudonymise", "body": "null"})),
    })


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        with running_postgres(max_connections=30) as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


def rows(server: Postgres, database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: what "untouched" is compared against."""
    with psycopg.connect(server.dsn(dbname=database)) as connection:
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608 (fixed names)
                for table in ("customers", "orders", "reviews")}


def tool(name: str, *args: str) -> None:
    done = subprocess.run([str(postgres_bin() / name), *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"{name} failed: {done.stderr}"


def by_activity(server: Postgres, store: Store, vault_root: Path, tmp_path: Path) -> dict[str, int]:
    activities = SuppressionActivities(
        postgres=PostgresSubjects(dsn_for=lambda _: server.dsn()), mongodb=MongoSubjects(client_for=_no_mongo),
        state_dir=tmp_path, environ={KEY_ENV: base64.b64encode(KEY).decode()})
    step = ReapplyStep(store_name="shop", store=store, vault=VaultRef(storage=str(vault_root), key_env=KEY_ENV))
    result = ActivityEnvironment().run(activities.reapply_suppression, step)
    assert result.subjects == 1
    assert not any(word in result.model_dump_json().lower() for word in PERSONAL)
    return {table.table: table.erased for table in result.tables}


def by_command(server: Postgres, store: Store, vault_root: Path, tmp_path: Path) -> dict[str, int]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"gdpr": {"storage": str(vault_root), "key_env": KEY_ENV,
                                               "stores": {"shop": store.model_dump(mode="json")}}}))
    environment = {KEY_ENV: base64.b64encode(KEY).decode(), "ZEROTOUCH_PG_SHOP_DSN": server.dsn()}
    done = CliRunner().invoke(reapply, ["shop", "--policy", str(policy), "--state-dir", str(tmp_path), "--json"],
                              env=environment, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert not any(word in done.output.lower() for word in PERSONAL)
    printed = json.loads(done.output[done.output.index("{"):])  # after the policy loader's warnings, if any
    assert printed["subjects"] == 1
    erased: dict[str, int] = printed["erased"]
    return erased


def _no_mongo(_reference: str) -> Any:
    raise AssertionError("a PostgreSQL store must not reach MongoDB")


Reapply = Callable[[Postgres, Store, Path, Path], dict[str, int]]


@pytest.mark.parametrize("run_reapply", [by_activity, by_command], ids=["activity", "command"])
def test_a_restored_backup_from_before_an_erasure_is_erased_again(postgres: Postgres, tmp_path: Path,
                                                                  run_reapply: Reapply) -> None:
    database = postgres.create_database("shop")
    with psycopg.connect(postgres.dsn(dbname=database)) as connection:
        connection.execute(_SCHEMA)
    store, engine = shop(database), PostgresSubjects(dsn_for=lambda _: postgres.dsn())
    dump = tmp_path / "shop.dump"
    tool("pg_dump", "-Fc", "-f", str(dump), "-d", postgres.dsn(dbname=database))

    # The erasure, as the request's activities do it: subject and manifest in the vault, erase, suppress.
    vault_root = tmp_path / "vault"
    vault = RequestVault(vault_root, KEY)
    subject_pseudonym = vault.record_subject("req-alice", ALICE)
    manifest = engine.resolve(store, ALICE)
    vault.write_manifest("req-alice", "shop", manifest)
    assert sum(engine.erase(store, manifest, vault.field_pseudonym).values()) == ALICE_ROWS
    vault.suppress(subject_pseudonym, "req-alice")
    assert engine.count(store, ALICE) == 0
    erased_state = rows(postgres, database)

    # The backup from before the erasure is restored over the database: the subject is back.
    tool("pg_restore", "--clean", "--if-exists", "--exit-on-error", "-d", postgres.dsn(dbname=database), str(dump))
    assert engine.count(store, ALICE) == ALICE_ROWS

    erased = run_reapply(postgres, store, vault_root, tmp_path)

    assert erased == {"orders": 3, "reviews": 2, "customers": 2}
    assert engine.count(store, ALICE) == 0
    # Bob's rows untouched, and Alice's kept review carries the same keyed hash as after the first erasure.
    assert rows(postgres, database) == erased_state
    # A rerun finds nothing left to erase.
    assert run_reapply(postgres, store, vault_root, tmp_path) == {"orders": 0, "reviews": 0, "customers": 0}
    assert rows(postgres, database) == erased_state


def test_reapply_without_the_vault_key_fails_for_good(tmp_path: Path) -> None:
    activities = SuppressionActivities(postgres=PostgresSubjects(dsn_for=_no_postgres),
                                       mongodb=MongoSubjects(client_for=_no_mongo), state_dir=tmp_path, environ={})
    step = ReapplyStep(store_name="shop", store=shop("shop"), vault=VaultRef(key_env=KEY_ENV))
    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(activities.reapply_suppression, step)
    assert failed.value.type == errors.MISSING_SECRET and failed.value.non_retryable
    assert KEY_ENV in str(failed.value)


def test_reapply_command_names_the_known_stores_for_an_unknown_one(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"gdpr": {"stores": {"shop": shop("shop").model_dump(mode="json")}}}))
    done = CliRunner().invoke(reapply, ["shopp", "--policy", str(policy), "--state-dir", str(tmp_path)])
    assert isinstance(done.exception, UsageError)
    assert "no store 'shopp'" in str(done.exception) and "known: shop" in str(done.exception)


def _no_postgres(_reference: str) -> str:
    raise AssertionError("nothing may connect without the vault key")
