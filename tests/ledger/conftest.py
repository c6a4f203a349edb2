"""Ledger stores over real SQLite and a real, throwaway PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from zerotouch.ledger_store import LedgerStore, open_ledger


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


@dataclass
class Ledger:
    """A store plus a back door: raw SQL that bypasses the store, as an attacker would."""

    url: str
    store: LedgerStore
    tamper: Callable[[str], None]


def _sqlite_tamper(path: Path) -> Callable[[str], None]:
    def run(sql: str) -> None:
        with sqlite3.connect(path) as db:
            db.execute(sql)
    return run


def _postgres_tamper(dsn: str) -> Callable[[str], None]:
    def run(sql: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(sql.encode())  # bytes: test-only literal SQL from the test itself
    return run


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        url = f"sqlite:///{path}"
        return Ledger(url=url, store=open_ledger(url), tamper=_sqlite_tamper(path))
    server: Postgres = request.getfixturevalue("postgres_server")
    name = server.create_database("ledger")
    url = server.url(name)
    return Ledger(url=url, store=open_ledger(url), tamper=_postgres_tamper(url))
