"""The RPO canary writes a row a second, rides out a lost connection and keeps one day of rows."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from tests.support.waiting import wait_until
from zerotouch.pg_canary import CanaryWriter


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    try:
        with running_postgres() as running:
            yield running
    except PostgresUnavailable as error:
        pytest.fail(str(error))  # CI installs PostgreSQL: a missing server is a broken setup, not a skip


def _rows(dsn: str, table: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        return connection.execute(f"SELECT written_at > now() - interval '1 hour' FROM {table}").fetchall()  # noqa: S608


def test_the_canary_writes_reconnects_and_prunes(server: Postgres) -> None:
    dsn = server.dsn(dbname=server.create_database())
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA ops")
        connection.execute("CREATE TABLE ops.canary (written_at timestamptz PRIMARY KEY DEFAULT now())")
        connection.execute("INSERT INTO ops.canary VALUES (now() - interval '2 days')")
    canary = CanaryWriter(dsn, "ops.canary", interval=0.1)
    with canary:
        wait_until(lambda: canary.written >= 3, timeout=10)
        assert all(recent for (recent,) in _rows(dsn, "ops.canary"))  # the two-day-old row is gone
        with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'zerotouch-canary'")
        before = canary.written
        wait_until(lambda: canary.written >= before + 3, timeout=10)
        assert canary.last_error  # it noticed the lost connection, and went on
    stopped_at = canary.written
    assert len(_rows(dsn, "ops.canary")) >= stopped_at - 1
    assert canary.written == stopped_at


def test_the_canary_creates_its_table(server: Postgres) -> None:
    dsn = server.dsn(dbname=server.create_database())
    with CanaryWriter(dsn, interval=0.1) as canary:
        wait_until(lambda: canary.written >= 2, timeout=10)
    assert len(_rows(dsn, "zt_canary")) >= 2
