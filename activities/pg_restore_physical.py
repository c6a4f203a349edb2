"""A test restore of a base backup: WAL continuity, pg_verifybackup, then recovery in two phases.

Phase one recovers to the backup's named restore point and pauses there, where the recorded
table stats must match exactly. Phase two carries on to the requested time (or through all
archived WAL) and promotes, where the user's assertions run and the newest canary row measures
what a restore at that moment would lose (RPO). The scratch server reads a copy of the archived
WAL made by this worker: it cannot write to the archive and needs no permission to read it.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from activities.backup_engine import ToolFailed, run_tool, tool_version
from activities.pg_content import check_tables, newest_canary, run_assertions
from activities.pg_evidence import Evidence, not_run
from activities.pg_scratch import RestoreFailed, ScratchServer
from activities.pg_wal import DEFAULT_SEGMENT_SIZE, WalGap, WalRange, archived_range, copy_range
from zerotouch.backup_models import BackupManifest, EngineVerification
from zerotouch.backups import BackupTarget


@dataclass(frozen=True)
class RestoreSettings:
    bin_dir: Path
    user: str
    timeout: float
    tool_timeout: float
    beat: Callable[[str], None]


def _paused(connection: psycopg.Connection[Any]) -> bool:
    row = connection.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
    return bool(row and row[0] == "paused")


def _promoted(connection: psycopg.Connection[Any]) -> bool:
    row = connection.execute("SELECT NOT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def _copy_tablespaces(backup: Path, copy: Path, scratch: Path) -> str:
    """Point the copy's tablespace links at copies of the backup's tablespaces (the restore must never
    write into the repository); return what is missing, if anything."""
    links = copy / "pg_tblspc"
    for link in sorted(links.iterdir()) if links.is_dir() else []:
        original = backup / "tablespaces" / link.name
        if not original.is_dir():
            return f"tablespace {link.name} is missing from the backup (expected {original})"
        relocated = scratch / "tablespaces" / link.name
        shutil.copytree(original, relocated, symlinks=True)
        link.unlink()
        link.symlink_to(relocated)
    return ""


def verify_physical(target: BackupTarget, manifest: BackupManifest, data: Path, scratch: Path,
                    recovery_target_time: datetime | None, settings: RestoreSettings) -> EngineVerification:
    evidence = Evidence()
    started_at = datetime.now(UTC)
    verifybackup = str(settings.bin_dir / "pg_verifybackup")
    evidence.tool_versions = {"pg_verifybackup": tool_version(verifybackup),
                              "postgres": tool_version(str(settings.bin_dir / "postgres"))}
    later = [f"table {t}" for t in sorted(manifest.tables)] + [f"assertion {a.name}" for a in target.assertions]
    wal = _preflight(target, manifest, recovery_target_time, evidence, later)
    if wal is None:
        return evidence.result()

    server = ScratchServer(scratch, settings.bin_dir, user=settings.user, heartbeat=settings.beat)
    restore_started = time.monotonic()
    settings.beat("copying the base backup")
    with evidence.phase("copy"):
        shutil.copytree(data / "base", server.data, symlinks=True)
        missing = _copy_tablespaces(data, server.data, scratch)
        copied = copy_range(Path(target.wal_archive), wal, scratch / "wal")
    if missing:
        evidence.add("restore", False, f"{missing}\n{not_run(later)}")
        return evidence.result()

    settings.beat("pg_verifybackup")
    with evidence.phase("pg_verifybackup"):
        output = run_tool([verifybackup, str(server.data)], timeout=settings.tool_timeout, check=False)
    evidence.add("pg_verifybackup", "successfully verified" in output, output[-4000:],
                 evidence.durations["pg_verifybackup"])

    final = f"time {recovery_target_time.isoformat()}" if recovery_target_time else "all archived WAL"
    evidence.recovery_target = f"restore point {manifest.restore_point}, then {final}"
    try:
        _recover(server, target, manifest, recovery_target_time, evidence, settings)
    except (RestoreFailed, ToolFailed, psycopg.Error) as error:
        done = {check.name for check in evidence.checks}
        evidence.add("restore", False, f"{error}\n{not_run([n for n in later if n not in done])}")
        return evidence.result()
    answered = time.monotonic()
    if target.canary_table:
        evidence.measure_rpo(evidence.newest_canary_at, recovery_target_time or started_at)
    # A real restore would neither verify checksums nor hash tables: those seconds are not RTO.
    extra = evidence.durations["pg_verifybackup"] + evidence.durations["table_checks"]
    evidence.rto_seconds = round(answered - restore_started - extra, 3)
    evidence.add("restore", True, f"recovered to {evidence.recovery_target} ({len(wal.segments)} archived "
                 f"segments, {copied} bytes) and promoted; RTO {evidence.rto_seconds:.1f}s")
    return evidence.result()


def _preflight(target: BackupTarget, manifest: BackupManifest, recovery_target_time: datetime | None,
               evidence: Evidence, later: list[str]) -> WalRange | None:
    """The archived WAL the restore needs, or None (with a failed check) if it cannot succeed."""
    archive = Path(target.wal_archive)
    segment_size = int(manifest.details.get("wal_segment_size", DEFAULT_SEGMENT_SIZE))
    with evidence.phase("wal_continuity"):
        try:
            wal = archived_range(archive, manifest.wal_start_segment, segment_size,
                                 must_reach=str(manifest.details.get("restore_point_segment", "")))
        except WalGap as gap:
            evidence.add("wal continuity", False, f"{gap}\n{not_run(['restore', *later])}")
            return None
    evidence.add("wal continuity", True, f"{len(wal.segments)} segments {wal.first}..{wal.newest} in {archive}")
    if recovery_target_time and manifest.consistent_at and recovery_target_time < manifest.consistent_at:
        evidence.add("recovery target", False,
                     f"recovery target time {recovery_target_time.isoformat()} is before the backup's restore point "
                     f"({manifest.consistent_at.isoformat()}): pick a later time or an older backup")
        return None
    return wal


def _recover(server: ScratchServer, target: BackupTarget, manifest: BackupManifest,
             recovery_target_time: datetime | None, evidence: Evidence, settings: RestoreSettings) -> None:
    """Phase one: to the restore point, paused, table checks. Phase two: on to the target, promoted,
    assertions and the newest canary row (left in ``evidence.newest_canary_at``)."""
    point, database = manifest.restore_point, target.database
    superuser = str(manifest.details.get("superuser", "postgres"))
    base = {**{name: str(value) for name, value in manifest.details.get("settings", {}).items()},
            "restore_command": f"cp {shlex.quote(str(server.scratch / 'wal'))}/%f %p", "shared_buffers": "128MB"}
    (server.data / "recovery.signal").touch()
    server.prepare()
    settings.beat(f"recovering to restore point {point}")
    with evidence.phase("recover_to_restore_point"):
        server.configure({**base, "recovery_target_name": point, "recovery_target_action": "pause"})
        server.start()
        server.wait_for(f"paused at restore point {point}", _paused, user=superuser, timeout=settings.timeout)
    with evidence.phase("table_checks"), server.connect(superuser, database) as connection:
        evidence.extend(check_tables(connection, manifest.tables))
    final = f"time {recovery_target_time.isoformat()}" if recovery_target_time else "all archived WAL"
    settings.beat(f"recovering to {final}")
    with evidence.phase("recover_to_target"):
        server.stop("fast")
        to_time = {"recovery_target_time": recovery_target_time.isoformat()} if recovery_target_time else {}
        server.configure({**base, **to_time, "recovery_target_action": "promote"})
        server.start()
        server.wait_for("promoted", _promoted, user=superuser, timeout=settings.timeout)
    with evidence.phase("assertions"), server.connect(superuser, database) as connection:
        evidence.extend(run_assertions(connection, target.assertions))
        if target.canary_table:
            evidence.newest_canary_at = newest_canary(connection, target.canary_table)
