"""The PostgreSQL backup engine against real PostgreSQL: backups are proven by test restores, and
every way of breaking one (a flipped byte, a missing WAL segment, a truncated dump, a dropped
table) is caught; nothing outlives a verification, however it ends.

One archiving source serves the module; tests that damage something damage their own copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from activities.backup_postgres import PostgresEngine
from tests.backups.conftest_pg import (
    CANARY,
    Backup,
    busy_writer,
    copy_backup,
    create_app_database,
    engine_for,
    logical_target,
    physical_target,
    processes_in,
    scratch_root,
    take_backup,
)
from tests.support.pg_source import ArchivingSource, archiving_postgres
from tests.support.postgres import PostgresUnavailable
from tests.support.waiting import wait_until
from zerotouch.backup_models import EngineVerification
from zerotouch.backups import SqlAssertion
from zerotouch.pg_canary import CanaryWriter

ARCHIVE_TIMEOUT = 1


@pytest.fixture(scope="module")
def source() -> Iterator[ArchivingSource]:
    try:
        with archiving_postgres(archive_timeout=ARCHIVE_TIMEOUT) as server:
            dsn = create_app_database(server)
            with CanaryWriter(dsn, CANARY) as canary:
                wait_until(lambda: canary.written >= 2, timeout=10)
                yield server
    except PostgresUnavailable as error:
        pytest.fail(str(error))  # CI installs PostgreSQL: a missing server is a broken setup, not a skip


@pytest.fixture(scope="module")
def scratch_dirs() -> Iterator[Path]:
    with scratch_root() as root:
        yield root


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repository")


@pytest.fixture(scope="module")
def physical(source: ArchivingSource, repository: Path) -> Backup:
    """A base backup taken while another session keeps inserting into a checked table."""
    with busy_writer(source.server.dsn(dbname="app")):
        return take_backup(engine_for(source), physical_target(source), repository, "app-20260101T000000Z")


@pytest.fixture(scope="module")
def logical(source: ArchivingSource, repository: Path) -> Backup:
    with busy_writer(source.server.dsn(dbname="app")):
        return take_backup(engine_for(source), logical_target(source), repository, "app-dump-20260101T000000Z")


def checks(result: EngineVerification) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.ok, check.output) for check in result.checks}


def assert_all_passed(result: EngineVerification) -> None:
    failed = [f"{c.name}: {c.output}" for c in result.checks if not c.ok]
    assert not failed, "\n".join(failed)


def assert_nothing_left(scratch: Path) -> None:
    assert not scratch.exists(), f"{scratch} was left behind"
    assert processes_in(scratch.parent / scratch.name) == [], "a process still works in the scratch directory"


def test_physical_backup_records_what_it_restores_from(physical: Backup) -> None:
    manifest = physical.manifest
    assert manifest.method == "physical" and manifest.timeline == 1
    assert manifest.restore_point == "zt-app-20260101T000000Z"
    assert manifest.wal_start_segment.startswith("00000001") and len(manifest.wal_start_segment) == 24
    assert manifest.lsn_start and manifest.lsn_end and manifest.consistent_at is not None
    assert manifest.source["system_identifier"].isdigit() and manifest.source["database"] == "app"
    assert "password" not in json.dumps(manifest.source)
    assert manifest.tables["public.orders"].rows > 500  # the racing writer got some rows in
    assert manifest.tables["doomed"].rows == 100
    assert manifest.tool_versions["pg_basebackup"].startswith("pg_basebackup (PostgreSQL)")
    assert manifest.details["canary_newest"] is not None
    assert (physical.data / "base" / "backup_manifest").is_file()
    # The tablespace came along inside the backup, linked relatively so the published directory is whole.
    (oid,) = manifest.details["tablespaces"]
    assert (physical.data / "base" / "pg_tblspc" / oid).resolve() == (physical.data / "tablespaces" / oid).resolve()
    assert any((physical.data / "tablespaces" / oid).iterdir())


def test_physical_verify_restores_the_exact_stats_and_measures_rto_and_rpo(
        source: ArchivingSource, physical: Backup, scratch_dirs: Path) -> None:
    scratch = scratch_dirs / "physical-ok"
    beats: list[str] = []
    result = engine_for(source, beats.append).verify(physical.target, physical.manifest, physical.data,
                                                     scratch=scratch, recovery_target_time=None)
    assert_all_passed(result)
    by_name = checks(result)
    assert {"wal continuity", "pg_verifybackup", "table public.orders", "table doomed",
            "assertion orders restored", "restore"} <= set(by_name)
    assert "as recorded" in by_name["table public.orders"][1]
    assert result.recovery_target == "restore point zt-app-20260101T000000Z, then all archived WAL"
    assert result.rto_seconds is not None and 0 < result.rto_seconds < 60
    assert result.rpo_seconds is not None and result.rpo_seconds < ARCHIVE_TIMEOUT + 5
    assert result.tool_versions["pg_verifybackup"].startswith("pg_verifybackup")
    assert {"copy", "recover_to_restore_point", "recover_to_target"} <= set(result.durations)
    assert any("pg_verifybackup" in beat for beat in beats)
    assert_nothing_left(scratch)


def test_logical_backup_and_verify(source: ArchivingSource, logical: Backup, scratch_dirs: Path) -> None:
    assert logical.manifest.tables["public.orders"].rows > 500
    assert (logical.data / "app.dump").is_file()
    scratch = scratch_dirs / "logical-ok"
    result = engine_for(source).verify(logical.target, logical.manifest, logical.data, scratch=scratch,
                                       recovery_target_time=None)
    assert_all_passed(result)
    assert {"pg_restore --list", "restore", "table public.orders", "table doomed",
            "assertion orders restored"} <= set(checks(result))
    assert result.rto_seconds is not None and result.rto_seconds > 0
    # A dump loses what came after it: at least the seconds since the logical backup was taken.
    assert result.rpo_seconds is not None and result.rpo_seconds > 0
    assert_nothing_left(scratch)


def test_a_flipped_byte_in_the_base_backup_is_detected(
        source: ArchivingSource, physical: Backup, scratch_dirs: Path, tmp_path: Path) -> None:
    damaged = copy_backup(physical, tmp_path / "data")
    victim = max((damaged.data / "base" / "base").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF
    victim.write_bytes(bytes(content))
    scratch = scratch_dirs / "flipped"
    result = engine_for(source).verify(damaged.target, damaged.manifest, damaged.data, scratch=scratch,
                                       recovery_target_time=None)
    ok, output = checks(result)["pg_verifybackup"]
    assert not ok and "checksum mismatch" in output and victim.name in output
    assert_nothing_left(scratch)


def test_a_missing_wal_segment_is_a_named_gap(
        source: ArchivingSource, physical: Backup, scratch_dirs: Path, tmp_path: Path) -> None:
    source.switch_wal()
    archive = tmp_path / "archive"
    shutil.copytree(source.archive, archive, ignore=shutil.ignore_patterns("archtemp*"))  # basic_archive in flight
    segments = sorted(p.name for p in archive.iterdir()
                      if len(p.name) == 24 and p.name > physical.manifest.wal_start_segment)
    missing = segments[len(segments) // 2]
    (archive / missing).unlink()
    target = physical.target.model_copy(update={"wal_archive": str(archive)})
    scratch = scratch_dirs / "gap"
    result = engine_for(source).verify(target, physical.manifest, physical.data, scratch=scratch,
                                       recovery_target_time=None)
    ok, output = checks(result)["wal continuity"]
    assert not ok and output.startswith(f"WAL gap: {missing}")
    assert "restore" in output and not any(c.ok for c in result.checks)  # nothing else claimed to pass
    assert_nothing_left(scratch)


def test_a_truncated_dump_fails_to_restore(
        source: ArchivingSource, logical: Backup, scratch_dirs: Path, tmp_path: Path) -> None:
    damaged = copy_backup(logical, tmp_path / "data")
    dump = damaged.data / "app.dump"
    with dump.open("r+b") as handle:
        handle.truncate(dump.stat().st_size // 2)
    scratch = scratch_dirs / "truncated"
    result = engine_for(source).verify(damaged.target, damaged.manifest, damaged.data, scratch=scratch,
                                       recovery_target_time=None)
    by_name = checks(result)
    failed = [name for name, (ok, _) in by_name.items() if not ok]
    assert failed and set(failed) <= {"pg_restore --list", "restore"}
    assert not any(name.startswith(("table", "assertion")) for name in by_name)  # skipped, not passed
    assert_nothing_left(scratch)


def test_stats_that_do_not_match_fail_the_table_check(
        source: ArchivingSource, logical: Backup, scratch_dirs: Path) -> None:
    wrong = logical.manifest.model_copy(deep=True)
    wrong.tables["doomed"].rows += 1
    scratch = scratch_dirs / "mismatch"
    result = engine_for(source).verify(logical.target, wrong, logical.data, scratch=scratch,
                                       recovery_target_time=None)
    ok, output = checks(result)["table doomed"]
    assert not ok and output.startswith("expected 101 rows") and "got 100 rows" in output
    assert checks(result)["table public.orders"][0]
    assert_nothing_left(scratch)


def _now_on(source: ArchivingSource) -> datetime:
    with psycopg.connect(source.server.admin_dsn) as connection:
        row = connection.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def _insert_event(source: ArchivingSource, label: str) -> None:
    with psycopg.connect(source.server.dsn(dbname="app"), autocommit=True) as connection:
        connection.execute("INSERT INTO events (label) VALUES (%s)", (label,))


def _archive_now(source: ArchivingSource) -> None:
    segment = source.switch_wal()
    wait_until(lambda: source.archived(segment), timeout=30)


def test_pitr_recovers_to_the_target_time(source: ArchivingSource, physical: Backup, scratch_dirs: Path) -> None:
    _insert_event(source, "t1")
    time.sleep(0.5)  # separates the two commits on the clock PITR compares against
    between = _now_on(source)
    time.sleep(0.5)
    _insert_event(source, "t2")
    _archive_now(source)
    target = physical.target.model_copy(update={"assertions": [
        SqlAssertion(name="t1 present", sql="SELECT count(*) = 1 FROM events WHERE label = 't1'"),
        SqlAssertion(name="t2 absent", sql="SELECT count(*) = 0 FROM events WHERE label = 't2'"),
    ]})
    scratch = scratch_dirs / "pitr"
    result = engine_for(source).verify(target, physical.manifest, physical.data, scratch=scratch,
                                       recovery_target_time=between)
    assert_all_passed(result)
    assert result.recovery_target.endswith(f"then time {between.isoformat()}")
    assert result.newest_canary_at is not None and result.newest_canary_at <= between
    assert result.rpo_seconds == pytest.approx((between - result.newest_canary_at).total_seconds(), abs=0.01)
    assert result.rpo_seconds is not None and result.rpo_seconds < 2.5  # the canary writes every second
    assert_nothing_left(scratch)


def test_a_table_dropped_after_the_backup_is_missing_at_a_later_target(
        source: ArchivingSource, physical: Backup, scratch_dirs: Path) -> None:
    source.execute("DROP TABLE doomed", dbname="app")
    after_drop = _now_on(source)
    _insert_event(source, "after drop")  # a commit after the target time, so recovery can stop there
    _archive_now(source)
    target = physical.target.model_copy(update={"assertions": [
        SqlAssertion(name="doomed still has rows", sql="SELECT count(*) = 100 FROM doomed")]})
    scratch = scratch_dirs / "dropped"
    result = engine_for(source).verify(target, physical.manifest, physical.data, scratch=scratch,
                                       recovery_target_time=after_drop)
    by_name = checks(result)
    assert by_name["table doomed"][0]  # at the backup's restore point the table was whole
    ok, output = by_name["assertion doomed still has rows"]
    assert not ok and 'relation "doomed" does not exist' in output
    assert_nothing_left(scratch)


class Cancelled(Exception):
    """What Temporal raises in a cancelled activity's thread."""


def test_cancellation_mid_restore_leaves_nothing(
        source: ArchivingSource, physical: Backup, scratch_dirs: Path) -> None:
    scratch = scratch_dirs / "cancelled"
    seen: list[list[int]] = []

    def heartbeat(message: str) -> None:
        if message.startswith("recovering to all archived WAL"):  # the server is up, paused at the restore point
            seen.append(processes_in(scratch))
            raise Cancelled

    with pytest.raises(Cancelled):
        engine_for(source, heartbeat).verify(physical.target, physical.manifest, physical.data, scratch=scratch,
                                             recovery_target_time=None)
    assert seen and seen[0], "the scratch server should have been running when the cancellation came"
    assert_nothing_left(scratch)


_KILLED_WORKER = """
import json, sys, time
from pathlib import Path
from activities.backup_postgres import PostgresEngine
from zerotouch.backup_models import BackupManifest
from zerotouch.backups import BackupTarget

def heartbeat(message):
    print(message, flush=True)
    if message.startswith("recovering to all archived WAL"):
        time.sleep(600)  # killed here, its scratch server running

spec = json.loads(Path(sys.argv[1]).read_text())
engine = PostgresEngine(dsn_for=lambda _: spec["dsn"], heartbeat=heartbeat)
engine.verify(BackupTarget.model_validate(spec["target"]), BackupManifest.model_validate(spec["manifest"]),
              Path(spec["data"]), scratch=Path(spec["scratch"]), recovery_target_time=None)
"""


def test_sweep_cleans_up_after_a_killed_worker(
        source: ArchivingSource, physical: Backup, scratch_dirs: Path, tmp_path: Path) -> None:
    scratch = scratch_dirs / "killed"
    spec = {"dsn": source.server.admin_dsn, "target": physical.target.model_dump(mode="json"),
            "manifest": physical.manifest.model_dump(mode="json"), "data": str(physical.data),
            "scratch": str(scratch)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    worker = subprocess.Popen([sys.executable, "-c", _KILLED_WORKER, str(tmp_path / "spec.json")],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            if line.startswith("recovering to all archived WAL"):
                break
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
        leaked = processes_in(scratch)
        assert leaked, "the killed worker's scratch server should still be running"
        engine_for(source).sweep(physical.target, scratch)
        assert_nothing_left(scratch)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        PostgresEngine(dsn_for=lambda _: "").sweep(physical.target, scratch)
