"""Scenario 8: PostgreSQL backups proven by test restores: backup and verification time, RTO and
RPO at three database sizes, physical (pg_basebackup + archived WAL) and logical (pg_dump -Fc)
side by side.

The source is the demo database of `zerotouch up` (`embedded/demo_database.py`: WAL archived
continuously with basic_archive, 1 MB segments, a canary row every second, an order every 3 s),
started in this scenario's own directory. At each size, `pgbench -i -s N` (re)generates the data
in its `shop` database; then, three rounds per size, a light writer (pgbench's TPC-B transaction,
5/s) runs while both backups are taken, and each backup is verified by a restore into a throwaway
cluster, as the backup activities do it (`activities/backups.py`: stage, engine, publish with the
manifest last; check the files against the manifest, restore, check, compare with the
objectives), without Temporal around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from activities.backup_postgres import PostgresEngine
from activities.backups import restore_and_check
from bench.report import Section
from bench.scenarios.backups_report import (
    ARCHIVE_TIMEOUT,
    ASSERTIONS,
    CANARY,
    FULL_ROUNDS,
    FULL_SCALES,
    METHODS,
    QUICK_SCALES,
    TABLES,
    WRITER_TPS,
    Round,
    Size,
    Verification,
    section,
)
from embedded.demo_database import DATABASE, DemoDatabase
from zerotouch.backup_models import BackupManifest, VerificationRequest
from zerotouch.backup_repository import DirectoryRepository
from zerotouch.backups import BackupTarget, PostgresMethod


def _target(method: PostgresMethod, archive: Path) -> BackupTarget:
    return BackupTarget(
        name=f"shop-{method}", engine="postgres", method=method, connection="demo", database=DATABASE,
        wal_archive=str(archive) if method == "physical" else "", canary_table=CANARY, tables=TABLES,
        assertions=ASSERTIONS,
    )


class TpcbWriter:
    """pgbench's TPC-B transaction at a fixed rate in a thread, each one's latency counted from its
    scheduled start (as `pgbench -R` does), so a wait on a lock shows as latency."""

    def __init__(self, dsn: str, scale: int, rate: float = WRITER_TPS) -> None:
        self._dsn, self._scale, self._interval = dsn, scale, 1.0 / rate
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-tpcb-writer", daemon=True)
        self._rng = random.Random(scale)  # noqa: S311 - a reproducible workload, not a secret
        self.done: list[tuple[float, float]] = []  # (wall clock when committed, seconds since scheduled)
        self.error = ""

    def start(self) -> TpcbWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(60)
        if self.error:
            raise RuntimeError(f"the TPC-B writer failed: {self.error}")

    def longest(self, began: float, ended: float) -> float:
        """The longest transaction that committed between two wall-clock times (0 if none did)."""
        return max((latency for at, latency in self.done if began <= at <= ended), default=0.0)

    def _run(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=10,
                                 application_name="bench-tpcb-writer") as connection:
                scheduled = time.monotonic()
                while not self._stopping.is_set():
                    aid = self._rng.randint(1, 100_000 * self._scale)
                    tid, bid = self._rng.randint(1, 10 * self._scale), self._rng.randint(1, self._scale)
                    delta = self._rng.randint(-5000, 5000)
                    with connection.transaction():
                        connection.execute("UPDATE pgbench_accounts SET abalance = abalance + %s WHERE aid = %s",
                                           (delta, aid))
                        connection.execute("SELECT abalance FROM pgbench_accounts WHERE aid = %s", (aid,))
                        connection.execute("UPDATE pgbench_tellers SET tbalance = tbalance + %s WHERE tid = %s",
                                           (delta, tid))
                        connection.execute("UPDATE pgbench_branches SET bbalance = bbalance + %s WHERE bid = %s",
                                           (delta, bid))
                        connection.execute("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                                           "VALUES (%s, %s, %s, %s, CURRENT_TIMESTAMP)", (tid, bid, aid, delta))
                    self.done.append((time.time(), time.monotonic() - scheduled))
                    scheduled += self._interval
                    self._stopping.wait(max(0.0, scheduled - time.monotonic()))
        except psycopg.Error as error:
            self.error = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)


class Source:
    """The archiving demo database, filled by `pgbench -i` and written to by a TPC-B writer."""

    def __init__(self, state: Path, logs: Path) -> None:
        self.demo = DemoDatabase(state, archive=state / "wal-archive", canary_table=CANARY,
                                 archive_timeout=ARCHIVE_TIMEOUT)
        self.logs = logs
        self.writer: TpcbWriter | None = None

    def generate(self, scale: int) -> float:
        """`pgbench -i -s scale` (drop, create, generate, vacuum, primary keys); its seconds."""
        params = conninfo_to_dict(self.demo.dsn())
        command = [str(self.demo.bin_dir / "pgbench"), "-h", str(params["host"]), "-p", str(params["port"]),
                   "-U", str(params["user"]), "-i", "-q", "-s", str(scale), DATABASE]
        started = time.monotonic()
        with (self.logs / f"pgbench-init-s{scale}.log").open("wb") as log:
            subprocess.run(command, env={**os.environ, "PGPASSWORD": str(params["password"])}, stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True, timeout=3600)
        return time.monotonic() - started

    def start_writer(self, scale: int) -> TpcbWriter:
        self.writer = TpcbWriter(self.demo.dsn(), scale).start()
        return self.writer

    def stop_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.stop()

    def query(self, statement: str) -> Any:
        with psycopg.connect(self.demo.dsn(), autocommit=True, connect_timeout=10) as connection:
            row = connection.execute(statement).fetchone()
        assert row is not None
        return row[0]

    def archive_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.demo.archive.iterdir() if p.is_file())

    def wait_archived(self, timeout: float = 900.0) -> float:
        """Close the current WAL segment and wait until the archiver has stored it: the backlog a
        bulk load leaves is archived before a backup starts (not charged to the backup)."""
        started = time.monotonic()
        segment = str(self.query("SELECT pg_walfile_name(pg_switch_wal())"))
        while not (self.demo.archive / segment).is_file():
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"WAL segment {segment} not archived within {timeout:.0f} s")
            time.sleep(0.2)
        return time.monotonic() - started


def _take(engine: PostgresEngine, repository: DirectoryRepository, target: BackupTarget,
          backup_id: str) -> BackupManifest:
    """What `take_backup` does: stage, run the engine, publish with the manifest written last."""
    started = datetime.now(UTC)
    written = engine.backup(target, repository.staging(target.name, backup_id))
    return repository.commit(BackupManifest(**written.model_dump(), id=backup_id, target=target.name,
                                            engine=target.engine, started_at=started, finished_at=datetime.now(UTC)))


def _verify(engine: PostgresEngine, repository: DirectoryRepository, target: BackupTarget, backup_id: str,
            scratch: Path) -> Verification:
    """What `verify_backup` does (`activities.backups.restore_and_check`), without recording the report."""
    started = time.monotonic()
    report = restore_and_check(engine, repository, target, VerificationRequest(
        target=target, backup_id=backup_id, verification_id=scratch.name), scratch)
    return Verification(
        seconds=time.monotonic() - started, ok=report.ok, rto=report.rto_seconds, rpo=report.rpo_seconds,
        newest_canary_at=report.newest_canary_at, durations=report.durations,
        failed=[f"{c.name}: {c.output[:300]}" for c in report.checks if not c.ok], checks=len(report.checks))


def _round(source: Source, engine: PostgresEngine, repository: DirectoryRepository, scratch_root: Path,
           scale: int, number: int) -> Round:
    """Both backups under the writer, then both verifications: the dump first, so its RPO is what a
    restore right after the dump loses (the best case for dumps); the physical one loses what the
    archive had not received yet, whenever it runs."""
    done = Round()
    targets = {method: _target(method, source.demo.archive) for method in METHODS}
    ids = {method: f"s{scale}-r{number}-{method}" for method in METHODS}
    writer = source.start_writer(scale)
    try:
        time.sleep(2.0)  # the writer is connected and writing before the first backup starts
        for method in METHODS:
            began, started = time.time(), time.monotonic()
            done.backup_bytes[method] = _take(engine, repository, targets[method], ids[method]).size_bytes
            done.backup_seconds[method] = time.monotonic() - started
            done.writer_longest[method] = writer.longest(began, time.time())
    finally:
        source.stop_writer()
    done.writer_transactions = len(writer.done)
    for method in reversed(METHODS):
        done.verification[method] = _verify(engine, repository, targets[method], ids[method],
                                            scratch_root / ids[method])
    for method in METHODS:
        repository.delete(targets[method].name, ids[method])
    return done


def _measure(source: Source, engine: PostgresEngine, repository: DirectoryRepository, scratch_root: Path,
             scale: int, rounds: int) -> Size:
    size = Size(scale=scale)
    archived_before = source.archive_bytes()
    size.generate_seconds = source.generate(scale)
    size.archive_catch_up_seconds = source.wait_archived()
    size.archive_growth_bytes = source.archive_bytes() - archived_before
    size.database_bytes = int(source.query(f"SELECT pg_database_size('{DATABASE}')"))
    size.server_version = str(source.query("SHOW server_version")).split()[0]
    size.accounts = int(source.query("SELECT count(*) FROM pgbench_accounts"))
    size.rounds = [_round(source, engine, repository, scratch_root, scale, number) for number in range(1, rounds + 1)]
    return size


def _measure_all(workdir: Path, scales: tuple[int, ...], rounds: int) -> list[Size]:
    workdir.mkdir(parents=True, exist_ok=True)
    # Outside the bench's root-only directory: the servers run as `nobody` and must reach their files.
    state = Path(tempfile.mkdtemp(prefix="zt-bench-backups-"))
    state.chmod(0o711)
    source = Source(state, workdir)
    try:
        repository = DirectoryRepository(state / "repository")
        scratch_root = state / "scratch"
        scratch_root.mkdir()
        scratch_root.chmod(0o755)
        source.demo.start()
        engine = PostgresEngine(dsn_for=lambda _reference: source.demo.dsn(), bin_dir=source.demo.bin_dir)
        return [_measure(source, engine, repository, scratch_root, scale, rounds) for scale in scales]
    finally:
        with contextlib.suppress(Exception):
            source.stop_writer()
        source.demo.stop()  # pg_ctl stop, then the postmaster's PID if pg_ctl could not
        with contextlib.suppress(OSError):
            shutil.copy(source.demo.log, workdir / "source-server.log")
        shutil.rmtree(state, ignore_errors=True)


async def run(workdir: Path, *, quick: bool) -> Section:
    scales, rounds = (QUICK_SCALES, 1) if quick else (FULL_SCALES, FULL_ROUNDS)
    sizes = await asyncio.to_thread(_measure_all, workdir, scales, rounds)
    return section(sizes, rounds)
