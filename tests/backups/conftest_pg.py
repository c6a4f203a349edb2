"""Shared pieces for the PostgreSQL engine tests (imported explicitly; `conftest.py` is the lead's).

One archiving source per test module, a database ``app`` with checked tables, a canary writer,
a repository, and helpers to take a backup, find leaked processes and keep writers busy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from activities.backup_postgres import PostgresEngine
from activities.pg_scratch import server_pid
from tests.support.pg_source import ArchivingSource
from zerotouch.backup_models import BackupManifest
from zerotouch.backup_repository import DirectoryRepository
from zerotouch.backups import BackupTarget, SqlAssertion

DATABASE = "app"
CANARY = "zt_canary"

_SCHEMA = """
CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(12, 2),
                     placed_at timestamptz NOT NULL DEFAULT now(), note jsonb);
INSERT INTO orders (customer, amount, note)
    SELECT 'customer ' || i, i * 1.25, jsonb_build_object('i', i, 'tags', ARRAY['a', 'b'])
    FROM generate_series(1, 500) AS i;
CREATE TABLE doomed (id int PRIMARY KEY, label text) TABLESPACE cold;
INSERT INTO doomed SELECT i, 'row ' || i FROM generate_series(1, 100) AS i;
CREATE TABLE events (id serial PRIMARY KEY, label text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
"""


def create_app_database(source: ArchivingSource) -> str:
    """The ``app`` database with its tables (one in a tablespace of its own); returns its DSN."""
    source.execute(f'CREATE DATABASE "{DATABASE}"')
    source.execute(f"CREATE TABLESPACE cold LOCATION '{source.tablespace_dir}'")
    dsn = source.server.dsn(dbname=DATABASE)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(_SCHEMA)
    return dsn


def physical_target(source: ArchivingSource, **changes: object) -> BackupTarget:
    target = BackupTarget(
        name="app", engine="postgres", method="physical", connection="main", database=DATABASE,
        wal_archive=str(source.archive), canary_table=CANARY, tables=["public.orders", "doomed"],
        assertions=[SqlAssertion(name="orders restored", sql="SELECT count(*) >= 500 FROM orders")],
    )
    return target.model_copy(update=changes)


def logical_target(source: ArchivingSource, **changes: object) -> BackupTarget:
    target = BackupTarget(
        name="app-dump", engine="postgres", method="logical", connection="main", database=DATABASE,
        canary_table=CANARY, tables=["public.orders", "doomed"],
        assertions=[SqlAssertion(name="orders restored", sql="SELECT count(*) >= 500 FROM orders")],
    )
    return target.model_copy(update=changes)


def engine_for(source: ArchivingSource, heartbeat: object = None) -> PostgresEngine:
    return PostgresEngine(dsn_for=lambda _reference: source.server.admin_dsn,
                          heartbeat=heartbeat if callable(heartbeat) else None, archive_wait=60)


@dataclass
class Backup:
    target: BackupTarget
    manifest: BackupManifest
    data: Path


def take_backup(engine: PostgresEngine, target: BackupTarget, root: Path, backup_id: str) -> Backup:
    """What the backup activity does: stage, run the engine, publish with a manifest written last."""
    repository = DirectoryRepository(root)
    started = datetime.now(UTC)
    result = engine.backup(target, repository.staging(target.name, backup_id))
    manifest = repository.commit(BackupManifest(**result.model_dump(), id=backup_id, target=target.name,
                                                engine="postgres", started_at=started, finished_at=datetime.now(UTC)))
    assert repository.check_files(manifest) == []
    return Backup(target=target, manifest=manifest, data=repository.data_path(target.name, backup_id))


def copy_backup(backup: Backup, into: Path) -> Backup:
    """A private copy of a backup's files, for a test that damages them."""
    shutil.copytree(backup.data, into, symlinks=True)
    return Backup(target=backup.target, manifest=backup.manifest, data=into)


@contextlib.contextmanager
def scratch_root() -> Iterator[Path]:
    """A directory the scratch server's user can reach (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="zt-scratch-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def processes_in(directory: Path) -> list[int]:
    """PIDs whose working directory is inside ``directory`` (a PostgreSQL server works in its data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == directory or directory in cwd.parents:
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def busy_writer(dsn: str, table: str = "orders") -> Iterator[threading.Event]:
    """Insert into ``table`` as fast as one connection can until the block ends (writes racing a backup)."""
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as connection:
            while not stop.is_set():
                connection.execute(f"INSERT INTO {table} (customer, amount) VALUES ('racer', 1)")  # noqa: S608
                stop.wait(0.005)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)


def postmasters(scratch: Path) -> list[int]:
    """The live postmasters of the scratch clusters under ``scratch`` (not the short-lived helpers)."""
    if not scratch.exists():
        return []
    pids = (server_pid(pid_file.parent) for pid_file in scratch.rglob("postmaster.pid"))
    return sorted(pid for pid in pids if pid is not None)
