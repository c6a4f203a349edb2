"""The PostgreSQL backup engine: physical (pg_basebackup + archived WAL) and logical (pg_dump -Fc).

The work is in small modules, one concern each: `pg_backup_take` (taking a backup and the
stats it must reproduce), `pg_restore_physical` / `pg_restore_logical` (test restores),
`pg_scratch` (the throwaway server), `pg_wal` (the archive), `pg_content` (stats, hashes,
assertions, canary). This class resolves connection references and binaries, and makes sure
a verification leaves nothing behind whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from activities.pg_backup_take import TakeSettings, take_logical, take_physical
from activities.pg_binaries import SERVER_USER, find_bin_dir
from activities.pg_restore_logical import verify_logical
from activities.pg_restore_physical import RestoreSettings, verify_physical
from activities.pg_scratch import sweep_scratch
from activities.pg_wal import prune_archive
from zerotouch.backup_models import BackupManifest, EngineBackup, EngineVerification
from zerotouch.backups import BackupTarget

TOOL_TIMEOUT = 6 * 3600.0  # pg_basebackup / pg_dump / pg_restore of a large database
ARCHIVE_WAIT = 300.0  # the restore point's segment must reach the archive within this
MIN_RESTORE_WAIT = 300.0


def _ignore(_message: str) -> None:
    return None


class PostgresEngine:
    """`BackupEngine` for PostgreSQL targets (see `activities.backup_engine`)."""

    def __init__(self, dsn_for: Callable[[str], str], bin_dir: Path | None = None, *,
                 heartbeat: Callable[[str], None] | None = None, server_user: str = SERVER_USER,
                 tool_timeout: float = TOOL_TIMEOUT, archive_wait: float = ARCHIVE_WAIT) -> None:
        self._dsn_for = dsn_for
        self._bin_dir = bin_dir
        self._beat = heartbeat or _ignore
        self._user = server_user
        self._tool_timeout = tool_timeout
        self._archive_wait = archive_wait

    @property
    def bin_dir(self) -> Path:
        # Found on first use, so a worker without PostgreSQL still starts (and says so when asked to back up).
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    def backup(self, target: BackupTarget, into: Path) -> EngineBackup:
        """Write a base backup (``into/base``) or a dump (``into/<database>.dump``) and its table stats."""
        settings = TakeSettings(bin_dir=self.bin_dir, tool_timeout=self._tool_timeout,
                                archive_wait=self._archive_wait, beat=self._beat)
        dsn = self._dsn_for(target.connection)
        if target.method == "physical":
            return take_physical(target, into, dsn, settings)
        return take_logical(target, into, dsn, settings)

    def verify(self, target: BackupTarget, manifest: BackupManifest, data: Path, *, scratch: Path,
               recovery_target_time: datetime | None) -> EngineVerification:
        """Restore into a throwaway cluster under ``scratch`` and check it; ``scratch`` is gone afterwards."""
        # Waiting for recovery may take as long as the objective allows, and then some, so a slow
        # restore is measured (and fails its RTO) rather than cut off.
        settings = RestoreSettings(bin_dir=self.bin_dir, user=self._user, tool_timeout=self._tool_timeout,
                                   timeout=max(MIN_RESTORE_WAIT, 2 * target.objectives.rto.total_seconds()),
                                   beat=self._beat)
        if recovery_target_time is not None and recovery_target_time.tzinfo is None:
            recovery_target_time = recovery_target_time.replace(tzinfo=UTC)  # the project's times are UTC
        self.sweep(target, scratch)
        scratch.mkdir(parents=True)
        try:
            if manifest.method == "physical":
                return verify_physical(target, manifest, data, scratch, recovery_target_time, settings)
            return verify_logical(target, manifest, data, scratch, settings)
        finally:
            self.sweep(target, scratch)

    def prune(self, target: BackupTarget, kept: list[BackupManifest]) -> int:
        """Archived WAL older than the oldest kept physical backup needs: no restore can use it any more.

        Nothing is pruned while no physical backup is kept: the archive may be all there is."""
        starts = [m.wal_start_segment for m in kept if m.method == "physical" and m.wal_start_segment]
        if target.method != "physical" or not target.wal_archive or not starts:
            return 0
        # Segment positions compare without their timeline prefix, as pg_archivecleanup compares them.
        return prune_archive(Path(target.wal_archive), min(starts, key=lambda segment: segment[8:]))

    def sweep(self, target: BackupTarget, scratch: Path) -> None:
        """Stop a scratch server a killed worker left in ``scratch`` and remove the directory."""
        sweep_scratch(scratch, self.bin_dir, self._user)
