"""Taking a PostgreSQL backup: a base backup plus a restore point, or a dump, each with table
stats that a restore must reproduce exactly.

Physical: after `pg_basebackup`, one transaction locks the checked tables in SHARE mode (reads
go on, writes wait), exports its snapshot and creates a named restore point; a second session
imports the snapshot before the lock is released. Every write to those tables committed before
the lock precedes the restore point in WAL and is in the snapshot; none after it is, so the stats
taken in the snapshot are exactly what recovery to that restore point reproduces. Writers wait
only milliseconds (the hashing runs after the lock is gone), and `lock_timeout` keeps the backup
from queueing behind a long writer.

Logical: a REPEATABLE READ transaction exports its snapshot; the stats are taken in it and
`pg_dump --snapshot` dumps exactly that snapshot while the transaction stays open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from activities import pg_source_access as source_access
from activities.backup_engine import run_tool, tool_version
from activities.pg_content import newest_canary, table_identifier, table_stats
from activities.pg_wal import parse_backup_label
from zerotouch.backup_models import EngineBackup, TableStat
from zerotouch.backups import BackupTarget

LOCK_TIMEOUT = "10s"
LOCK_ATTEMPTS = 3
BEAT_EVERY = 5.0


@dataclass(frozen=True)
class TakeSettings:
    bin_dir: Path
    tool_timeout: float
    archive_wait: float
    beat: Callable[[str], None]


def take_physical(target: BackupTarget, into: Path, dsn: str, settings: TakeSettings) -> EngineBackup:
    """pg_basebackup into ``into/base``, then stats and a restore point they match."""
    database_dsn = source_access.for_database(dsn, target.database)
    with source_access.connect(database_dsn) as connection:
        source, facts = source_access.identity(connection)
        tablespaces = source_access.tablespaces(connection)
    basebackup = str(settings.bin_dir / "pg_basebackup")
    conninfo, env = source_access.tool_dsn(database_dsn)
    mapping = [_tablespace_mapping(location, into.resolve() / "tablespaces" / oid)
               for oid, location in tablespaces.items()]
    settings.beat("pg_basebackup")
    run_tool([basebackup, "-D", str(into / "base"), "-Fp", "-X", "stream", "--checkpoint=fast",
              "--manifest-checksums=SHA256", *mapping, "-d", conninfo], timeout=settings.tool_timeout, env=env)
    for oid in tablespaces:
        # The backup directory is renamed when published: link relatively so it stays whole.
        link = into / "base" / "pg_tblspc" / oid
        link.unlink()
        link.symlink_to(Path("..", "..", "tablespaces", oid))
    lsn_start, first_segment, timeline = parse_backup_label(
        (into / "base" / "backup_label").read_text(encoding="utf-8"))
    ranges = json.loads((into / "base" / "backup_manifest").read_text(encoding="utf-8"))["WAL-Ranges"]
    settings.beat("table stats and restore point")
    restore_point = f"zt-{into.parent.name.removeprefix('.partial-')}"
    stats, canary, point_lsn, consistent_at = _stats_at_restore_point(database_dsn, target, restore_point)
    with source_access.connect(database_dsn) as connection:
        point_segment = _switch_wal(connection, point_lsn)
    settings.beat(f"waiting for {point_segment} to be archived")
    _wait_archived(Path(target.wal_archive), point_segment, settings.archive_wait, settings.beat)
    return EngineBackup(
        method="physical", source=source, lsn_start=lsn_start, lsn_end=str(ranges[-1]["End-LSN"]),
        timeline=timeline, wal_start_segment=first_segment, restore_point=restore_point,
        consistent_at=consistent_at, tables=stats,
        tool_versions={"pg_basebackup": tool_version(basebackup), "server": source["server_version"]},
        details={**facts, "restore_point_lsn": point_lsn, "restore_point_segment": point_segment,
                 "tablespaces": tablespaces,
                 "canary_newest": canary.isoformat() if canary else None, "format": "plain (base/)"},
    )


def _tablespace_mapping(location: str, into: Path) -> str:
    """Plain format writes a tablespace to its original path unless mapped: into the backup instead."""
    escaped = location.replace("=", "\\=")  # pg_basebackup's escape for '=' inside a path
    return f"--tablespace-mapping={escaped}={into}"


def _stats_at_restore_point(database_dsn: str, target: BackupTarget, name: str,
                            ) -> tuple[dict[str, TableStat], datetime | None, str, datetime]:
    """Stats that recovery to restore point ``name`` reproduces, with writers paused for milliseconds.

    One session locks the checked tables (SHARE: writers wait, readers go on), exports its
    snapshot and writes the restore point; a second session imports that snapshot, and only then
    does the first commit and release the lock. The hashing runs in the imported snapshot,
    unlocked: it sees exactly what the restore point has, however long it takes.
    """
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        with source_access.connect(database_dsn, autocommit=False) as locker, \
                source_access.connect(database_dsn, autocommit=False) as reader:
            try:
                locker.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
                if target.tables:
                    tables = sql.SQL(", ").join(table_identifier(t) for t in target.tables)
                    locker.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(tables))
                row = locker.execute("SELECT pg_export_snapshot(), pg_create_restore_point(%s)::text, "
                                     "clock_timestamp()", (name,)).fetchone()
                assert row is not None
                reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                reader.read_only = True
                reader.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(str(row[0]))))
                locker.commit()  # the writers go on; the reader keeps the snapshot
            except pg_errors.LockNotAvailable:
                locker.rollback()
                if attempt == LOCK_ATTEMPTS:
                    raise
                time.sleep(attempt)
                continue
            stats = table_stats(reader, target.tables)
            canary = newest_canary(reader, target.canary_table) if target.canary_table else None
            reader.rollback()
            return stats, canary, str(row[1]), row[2]
    raise AssertionError("unreachable")


def _switch_wal(connection: psycopg.Connection[Any], point_lsn: str) -> str:
    """Close the segment holding the restore point so it is archived now, not at archive_timeout."""
    row = connection.execute("SELECT pg_walfile_name(%s::pg_lsn), pg_switch_wal()", (point_lsn,)).fetchone()
    assert row is not None
    return str(row[0])


def _wait_archived(archive: Path, segment: str, timeout: float, beat: Callable[[str], None]) -> None:
    """A physical backup is usable only once its restore point's WAL is in the archive."""
    started = last_beat = time.monotonic()
    while not (archive / segment).is_file():
        now = time.monotonic()
        if now - last_beat >= BEAT_EVERY:
            beat(f"waiting for {segment} to be archived ({now - started:.0f}s)")
            last_beat = now
        if now - started > timeout:
            raise RuntimeError(f"WAL segment {segment} (the backup's restore point) was not archived into "
                               f"{archive} within {timeout:.0f}s: check the source's archiving "
                               "(pg_stat_archiver.last_failed_wal) and the target's wal_archive")
        time.sleep(0.2)


def take_logical(target: BackupTarget, into: Path, dsn: str, settings: TakeSettings) -> EngineBackup:
    """pg_dump -Fc of one exported snapshot, with the stats of that same snapshot."""
    database_dsn = source_access.for_database(dsn, target.database)
    dump = str(settings.bin_dir / "pg_dump")
    conninfo, env = source_access.tool_dsn(database_dsn)
    with source_access.connect(database_dsn, autocommit=False) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        row = connection.execute("SELECT pg_export_snapshot(), statement_timestamp()").fetchone()
        assert row is not None
        snapshot, consistent_at = str(row[0]), row[1]
        source, facts = source_access.identity(connection)
        settings.beat("table stats")
        stats = table_stats(connection, target.tables)
        canary = newest_canary(connection, target.canary_table) if target.canary_table else None
        settings.beat("pg_dump")
        # The exporting transaction must stay open until pg_dump has imported the snapshot.
        run_tool([dump, "-Fc", f"--snapshot={snapshot}", "-f", str(into / f"{target.database}.dump"),
                  "-d", conninfo], timeout=settings.tool_timeout, env=env)
        connection.rollback()
    return EngineBackup(
        method="logical", source=source, consistent_at=consistent_at, tables=stats,
        tool_versions={"pg_dump": tool_version(dump), "server": source["server_version"]},
        details={**facts, "snapshot": snapshot, "dump": f"{target.database}.dump",
                 "canary_newest": canary.isoformat() if canary else None, "format": "pg_dump -Fc"},
    )
