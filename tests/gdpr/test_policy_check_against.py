"""`zerotouch policy check --against`: the data map compared with a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from cli.main import main
from tests.support.policies import fast_policy
from tests.support.postgres import Postgres, running_postgres

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text, name text, created_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers (id), placed_at timestamptz);
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


def write_policy(tmp_path: Path, database: str, *, extra_table: bool = False) -> Path:
    path = fast_policy(tmp_path / "policy.yaml")
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    tables: dict[str, Any] = {
        "customers": {"identity": {"email": "email"}, "erase": {"method": "fields", "fields": {"name": "null"}},
                      "retention": {"column": "created_at", "keep": "365d"}},
        "orders": {"parent": {"table": "customers", "column": "customer_id"},
                   "retention": {"column": "placed_at", "keep": "30d"}},
    }
    if extra_table:
        tables["invoices"] = {"parent": {"table": "customers", "column": "customer_id"}}
    document["gdpr"] = {"stores": {"shop-db": {"kind": "postgres", "connection": "main", "database": database,
                                               "tables": tables}}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def database(postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> str:
    name = postgres.create_database("check")
    with psycopg.connect(postgres.dsn(dbname=name), autocommit=True) as connection:
        connection.execute(SCHEMA)
    # the worker's connection reference `main`, as the data worker resolves it
    monkeypatch.setenv("ZEROTOUCH_PG_MAIN_DSN", postgres.dsn())
    return name


def test_every_table_present_passes(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path, database)
    assert main(["policy", "check", str(policy), "--against", "all"]) == 0
    assert "store shop-db: every table and column present" in capsys.readouterr().out


def test_a_missing_table_fails_naming_it(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path, database, extra_table=True)
    assert main(["policy", "check", str(policy), "--against", "shop-db"]) == 1
    captured = capsys.readouterr()
    assert "store shop-db: missing invoices" in captured.out
    assert captured.err.startswith("zerotouch policy: the data map does not match the live database: shop-db lacks "
                                   "invoices") and captured.err.count("\n") == 1


def test_a_missing_column_fails_naming_it(postgres: Postgres, database: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(postgres.dsn(dbname=database), autocommit=True) as connection:
        connection.execute("ALTER TABLE customers DROP COLUMN name")
    assert main(["policy", "check", str(write_policy(tmp_path, database)), "--against", "all"]) == 1
    assert "shop-db lacks customers.name" in capsys.readouterr().err


def test_a_missing_database_or_connection_is_a_failure_without_a_dsn(
        postgres: Postgres, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(write_policy(tmp_path, "no_such_db")), "--against", "all"]) == 1
    error = capsys.readouterr().err
    assert "shop-db: cannot connect to PostgreSQL 'main' database no_such_db" in error and "does not exist" in error
    monkeypatch.delenv("ZEROTOUCH_PG_MAIN_DSN")
    assert main(["policy", "check", str(write_policy(tmp_path, database)), "--against", "all"]) == 1
    assert "set ZEROTOUCH_PG_MAIN_DSN" in capsys.readouterr().err


def test_an_unknown_store_is_a_usage_error(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(write_policy(tmp_path, database)), "--against", "nope"]) == 2
    assert "store(s) ['nope'] not in the policy's gdpr.stores (declared: shop-db)" in capsys.readouterr().err


def test_without_against_nothing_is_contacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEROTOUCH_PG_MAIN_DSN", raising=False)
    assert main(["policy", "check", str(write_policy(tmp_path, "no_such_db"))]) == 0
