"""A source PostgreSQL for backup tests: continuous WAL archiving into a directory.

Archiving uses `basic_archive` (no shell archive_command), 1 MB WAL segments (initdb
``--wal-segsize=1``, so a short archive_timeout does not fill the disk with 16 MB files)
and a short archive_timeout, so the newest committed row is at most that old in the archive.
initdb's default pg_hba trusts replication from 127.0.0.1, which pg_basebackup needs. As root
the server runs as nobody, who owns the archive and an empty directory for a tablespace; all
are removed on exit, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.postgres import Postgres, running_postgres


@dataclass
class ArchivingSource:
    server: Postgres
    archive: Path
    archive_timeout: float
    tablespace_dir: Path

    def execute(self, statement: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True) as connection:
            connection.execute(statement)

    def switch_wal(self) -> str:
        """Close the current segment (so it is archived now); return its name.

        pg_switch_wal() does nothing on a segment with no WAL since the last switch, so a
        transaction id is assigned (its commit writes a record) first: every call closes a
        segment of its own.
        """
        with psycopg.connect(self.server.admin_dsn, autocommit=True) as connection:
            connection.execute("SELECT txid_current()")
            row = connection.execute("SELECT pg_walfile_name(pg_current_wal_lsn()), pg_switch_wal()").fetchone()
        assert row is not None
        return str(row[0])

    def archived(self, segment: str) -> bool:
        return (self.archive / segment).is_file()


@contextlib.contextmanager
def archiving_postgres(archive_timeout: int = 1) -> Iterator[ArchivingSource]:
    archive = Path(tempfile.mkdtemp(prefix="zt-wal-"))
    tablespace = Path(tempfile.mkdtemp(prefix="zt-tblspc-"))  # for a CREATE TABLESPACE ... LOCATION
    if os.geteuid() == 0:
        shutil.chown(archive, "nobody")
        shutil.chown(tablespace, "nobody")
    try:
        settings = {"wal_level": "replica", "archive_mode": "on", "archive_library": "basic_archive",
                    "basic_archive.archive_directory": str(archive), "archive_timeout": f"{archive_timeout}s"}
        with running_postgres(settings=settings, initdb_args=["--wal-segsize=1"]) as server:
            yield ArchivingSource(server=server, archive=archive, archive_timeout=archive_timeout,
                                  tablespace_dir=tablespace)
    finally:
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(tablespace, ignore_errors=True)
