"""Where ledger records live: SQLite for the embedded default, PostgreSQL for a team.

Both keep one append-only table plus a one-row chain head. An append runs in one
transaction that locks the head (BEGIN IMMEDIATE in SQLite, SELECT ... FOR UPDATE
in PostgreSQL), so concurrent workers never fork the chain. The head also lets
`verify` notice a deleted last record, which the chain alone cannot.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg

from zerotouch.ledger_chain import seal, verify_chain
from zerotouch.ledger_models import GENESIS_HASH, LedgerReceipt, LedgerRecord, VerifyResult

# Columns duplicated out of the body are for lookups; when read back they override the
# body, so editing either one breaks the record's hash.
_COLUMNS = ("seq", "incident_id", "run_id", "recorded_at", "outcome", "prev_hash", "hash")


class LedgerStore(Protocol):
    def append(self, record: LedgerRecord) -> LedgerReceipt: ...
    def get(self, incident_id: str) -> list[LedgerRecord]: ...
    def all(self, since: datetime | None = None) -> list[LedgerRecord]: ...
    def verify(self) -> VerifyResult: ...


def _record(row: tuple[Any, ...]) -> LedgerRecord:
    *columns, body = row
    data = LedgerRecord.model_validate_json(body).model_dump()
    for name, value in zip(_COLUMNS, columns, strict=True):
        if name == "recorded_at":
            # Databases hand timestamps back in their own zone spelling; only a different
            # instant counts as an edit, or every PostgreSQL record would fail verification.
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            if moment == data[name]:
                continue
        data[name] = value
    return LedgerRecord.model_validate(data)


def _row(record: LedgerRecord) -> tuple[Any, ...]:
    return (record.seq, record.incident_id, record.run_id, record.recorded_at.isoformat(), record.outcome,
            record.prev_hash, record.hash, record.model_dump_json())


_SELECT = "SELECT seq, incident_id, run_id, recorded_at, outcome, prev_hash, hash, body FROM zerotouch_ledger"


class SqliteLedgerStore:
    """The ledger in one SQLite file (WAL), safe for threads and processes on one host."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE IF NOT EXISTS zerotouch_ledger (seq INTEGER PRIMARY KEY, "
                       "incident_id TEXT NOT NULL, run_id TEXT NOT NULL, recorded_at TEXT NOT NULL, "
                       "outcome TEXT NOT NULL, "
                       "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL, "
                       "UNIQUE (incident_id, run_id))")
            db.execute("CREATE TABLE IF NOT EXISTS zerotouch_ledger_head (id INTEGER PRIMARY KEY CHECK (id = 1), "
                       "seq INTEGER NOT NULL, hash TEXT NOT NULL)")
            db.execute("INSERT OR IGNORE INTO zerotouch_ledger_head VALUES (1, 0, ?)", (GENESIS_HASH,))
            db.execute("COMMIT")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: sqlite3 connections must not be shared across threads.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def append(self, record: LedgerRecord) -> LedgerReceipt:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # takes the write lock now: no two appends read the same head
            try:
                found = db.execute("SELECT seq, hash FROM zerotouch_ledger WHERE incident_id = ? AND run_id = ?",
                                   (record.incident_id, record.run_id)).fetchone()
                if found:
                    db.execute("ROLLBACK")
                    return LedgerReceipt(seq=found[0], hash=found[1], already_recorded=True)
                seq, prev = db.execute("SELECT seq, hash FROM zerotouch_ledger_head WHERE id = 1").fetchone()
                sealed = seal(record, seq=seq + 1, prev_hash=prev)
                db.execute("INSERT INTO zerotouch_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _row(sealed))
                db.execute("UPDATE zerotouch_ledger_head SET seq = ?, hash = ? WHERE id = 1", (sealed.seq, sealed.hash))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return LedgerReceipt(seq=sealed.seq, hash=sealed.hash)

    def get(self, incident_id: str) -> list[LedgerRecord]:
        with self._connect() as db:
            rows = db.execute(f"{_SELECT} WHERE incident_id = ? ORDER BY seq", (incident_id,)).fetchall()
        return [_record(row) for row in rows]

    def all(self, since: datetime | None = None) -> list[LedgerRecord]:
        records = self._all()
        return [r for r in records if since is None or r.recorded_at >= since]

    def _all(self) -> list[LedgerRecord]:
        with self._connect() as db:
            return [_record(row) for row in db.execute(f"{_SELECT} ORDER BY seq").fetchall()]

    def verify(self) -> VerifyResult:
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot for records and head
            rows = db.execute(f"{_SELECT} ORDER BY seq").fetchall()
            head = db.execute("SELECT seq, hash FROM zerotouch_ledger_head WHERE id = 1").fetchone()
            db.execute("COMMIT")
        return verify_chain([_record(row) for row in rows], head=(head[0], head[1]))


class PostgresLedgerStore:
    """The ledger in PostgreSQL; appends serialize on the chain-head row."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        with self._connect() as db, db.transaction():
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog; serialize it.
            db.execute("SELECT pg_advisory_xact_lock(hashtext('zerotouch_ledger_schema'))")
            db.execute("CREATE TABLE IF NOT EXISTS zerotouch_ledger (seq BIGINT PRIMARY KEY, "
                       "incident_id TEXT NOT NULL, run_id TEXT NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, "
                       "outcome TEXT NOT NULL, "
                       "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL, "
                       "UNIQUE (incident_id, run_id))")
            db.execute("CREATE TABLE IF NOT EXISTS zerotouch_ledger_head (id INT PRIMARY KEY CHECK (id = 1), "
                       "seq BIGINT NOT NULL, hash TEXT NOT NULL)")
            db.execute("INSERT INTO zerotouch_ledger_head VALUES (1, 0, %s) ON CONFLICT DO NOTHING", (GENESIS_HASH,))

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def append(self, record: LedgerRecord) -> LedgerReceipt:
        with self._connect() as db, db.transaction():
            head = db.execute("SELECT seq, hash FROM zerotouch_ledger_head WHERE id = 1 FOR UPDATE").fetchone()
            assert head is not None, "the chain head row is created with the schema"
            found = db.execute("SELECT seq, hash FROM zerotouch_ledger WHERE incident_id = %s AND run_id = %s",
                               (record.incident_id, record.run_id)).fetchone()
            if found:
                return LedgerReceipt(seq=found[0], hash=found[1], already_recorded=True)
            sealed = seal(record, seq=head[0] + 1, prev_hash=head[1])
            row = (*_row(sealed)[:3], sealed.recorded_at, *_row(sealed)[4:])
            db.execute("INSERT INTO zerotouch_ledger VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row)
            db.execute("UPDATE zerotouch_ledger_head SET seq = %s, hash = %s WHERE id = 1", (sealed.seq, sealed.hash))
        return LedgerReceipt(seq=sealed.seq, hash=sealed.hash)

    def get(self, incident_id: str) -> list[LedgerRecord]:
        with self._connect() as db:
            rows = db.execute(f"{_SELECT} WHERE incident_id = %s ORDER BY seq", (incident_id,)).fetchall()
        return [_record(row) for row in rows]

    def all(self, since: datetime | None = None) -> list[LedgerRecord]:
        with self._connect() as db:
            if since is None:
                rows = db.execute(f"{_SELECT} ORDER BY seq").fetchall()
            else:
                rows = db.execute(f"{_SELECT} WHERE recorded_at >= %s ORDER BY seq", (since,)).fetchall()
        return [_record(row) for row in rows]

    def verify(self) -> VerifyResult:
        with self._connect() as db, db.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # records and head from one snapshot
            rows = db.execute(f"{_SELECT} ORDER BY seq").fetchall()
            head = db.execute("SELECT seq, hash FROM zerotouch_ledger_head WHERE id = 1").fetchone()
        return verify_chain([_record(row) for row in rows], head=(head[0], head[1]) if head else None)


def open_ledger(url: str) -> LedgerStore:
    """`sqlite:///abs/path.db`, `sqlite:relative.db` or `postgresql://...` (also `postgres://`)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLedgerStore(url)
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        if path.startswith("//"):
            path = path[2:]  # sqlite:///abs → /abs; sqlite://rel is unusual but harmless
        if not path:
            raise ValueError(f"ledger URL {url!r} names no file; use sqlite:///abs/path.db or sqlite:relative.db")
        return SqliteLedgerStore(path)
    raise ValueError(f"unsupported ledger URL {url!r}; use sqlite:///path/ledger.db or postgresql://...")
