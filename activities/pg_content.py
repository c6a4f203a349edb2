"""What a database holds, in a form two copies can be compared by: row counts, content hashes,
the user's assertions and the newest canary row.

The content hash is order-independent so a restored copy (different physical row order,
rebuilt by pg_restore or replayed from WAL) hashes the same: each row's text form is hashed
with md5 and the 128 bits are summed as two 64-bit halves modulo 2^64. A sum streams through
the table in one pass with constant memory (no sort, unlike ``string_agg(... ORDER BY)``) and
keeps duplicate rows (a multiset, like the table). It is a checksum against loss and damage,
not a defence against someone forging rows to collide. Text forms depend on session settings
(time zone, date style, float digits), so both sides use the same ones (`SESSION_SETTINGS`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from zerotouch.backup_models import CheckResult, TableStat
from zerotouch.backups import SqlAssertion

HASH_SCHEME = "md5sum128"
ASSERTION_TIMEOUT_MS = 60_000
SESSION_SETTINGS = {
    "TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "extra_float_digits": "1",
    "bytea_output": "hex", "lc_monetary": "C",
}
_MOD = 2**64
_STATS = """
SELECT count(*),
       coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),
       coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)
FROM (SELECT md5(t::text) AS h FROM {table} AS t) AS hashed
"""


def table_identifier(name: str) -> sql.Identifier:
    """``schema.table`` or ``table`` (names are validated by the policy) → a quoted identifier."""
    return sql.Identifier(*name.split("."))


def prepare_session(connection: psycopg.Connection[Any]) -> None:
    """Fix the settings rows' text forms depend on (call before `table_stats`, on both sides)."""
    for name, value in SESSION_SETTINGS.items():
        connection.execute("SELECT set_config(%s, %s, false)", (name, value))


def table_stat(connection: psycopg.Connection[Any], table: str) -> TableStat:
    row = connection.execute(sql.SQL(_STATS).format(table=table_identifier(table))).fetchone()
    assert row is not None  # an aggregate always returns one row
    rows, high, low = int(row[0]), int(row[1]) % _MOD, int(row[2]) % _MOD
    return TableStat(rows=rows, hash=f"{HASH_SCHEME}:{high:016x}{low:016x}")


def table_stats(connection: psycopg.Connection[Any], tables: Sequence[str]) -> dict[str, TableStat]:
    """Row count and content hash of each table, each in the connection's current snapshot."""
    prepare_session(connection)
    return {table: table_stat(connection, table) for table in tables}


def check_tables(connection: psycopg.Connection[Any], expected: dict[str, TableStat]) -> list[CheckResult]:
    """One check per table the backup recorded: the restored count and hash must equal the recorded ones."""
    prepare_session(connection)
    checks = []
    for table, want in sorted(expected.items()):
        started = time.monotonic()
        try:
            with connection.transaction():
                got = table_stat(connection, table)
        except psycopg.Error as error:
            checks.append(CheckResult(name=f"table {table}", ok=False, seconds=round(time.monotonic() - started, 3),
                                      output=f"expected {want.rows} rows; got an error: {_first_line(error)}"))
            continue
        same = got.rows == want.rows and got.hash == want.hash
        output = (f"{got.rows} rows, hash {got.hash} (as recorded)" if same else
                  f"expected {want.rows} rows, hash {want.hash}; got {got.rows} rows, hash {got.hash}")
        checks.append(CheckResult(name=f"table {table}", ok=same, output=output,
                                  seconds=round(time.monotonic() - started, 3)))
    return checks


def run_assertions(connection: psycopg.Connection[Any], assertions: Sequence[SqlAssertion]) -> list[CheckResult]:
    """Each assertion in a read-only transaction; it passes only by returning exactly one boolean true."""
    checks = []
    for assertion in assertions:
        started = time.monotonic()
        try:
            with connection.transaction():
                connection.execute("SET TRANSACTION READ ONLY")
                connection.execute("SELECT set_config('statement_timeout', %s, true)", (str(ASSERTION_TIMEOUT_MS),))
                rows = connection.execute(assertion.sql).fetchall()
        except psycopg.Error as error:
            ok, output = False, f"error: {_first_line(error)}"
        else:
            ok = len(rows) == 1 and len(rows[0]) == 1 and rows[0][0] is True
            output = (f"returned {rows[0][0]!r}" if len(rows) == 1 and len(rows[0]) == 1
                      else f"returned {len(rows)} row(s) of {len(rows[0]) if rows else 0} column(s); "
                           "expected one boolean")
        checks.append(CheckResult(name=f"assertion {assertion.name}", ok=ok, output=output,
                                  seconds=round(time.monotonic() - started, 3)))
    return checks


def newest_canary(connection: psycopg.Connection[Any], table: str) -> datetime | None:
    """The newest ``written_at`` in the canary table, or None if it is empty or missing."""
    try:
        with connection.transaction():
            row = connection.execute(
                sql.SQL("SELECT max(written_at) FROM {}").format(table_identifier(table))).fetchone()
    except psycopg.Error:
        return None
    value = row[0] if row else None
    return value if isinstance(value, datetime) else None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
