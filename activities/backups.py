"""Backup activities (zerotouch-backup queue): take a backup, prove it by a test restore, list, prune.

Engine-independent: each target's engine (`activities/backup_engine.py`) writes and restores;
this module publishes backups in the repository, adds the checks every verification gets (the
files still match their manifest; RTO and RPO within the target's objectives), removes a killed
attempt's scratch leftovers before and after, and records the report next to the backup.
Every activity is idempotent under retries: a backup ID already published is returned as is, a
verification ID already recorded is returned as recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import CancelledError

from activities.backup_engine import BackupEngine
from activities.keepalive import keeps_alive
from zerotouch import activity_names as names
from zerotouch.backup_models import (
    BackupCatalog,
    BackupManifest,
    BackupRequest,
    BackupSummary,
    CheckResult,
    EngineVerification,
    ListRequest,
    RetentionRequest,
    RetentionResult,
    VerificationReport,
    VerificationRequest,
)
from zerotouch.backup_repository import BackupRepository, open_repository
from zerotouch.backups import BackupTarget, Engine
from zerotouch.retention import Candidate, plan

EngineFor = Callable[[Engine], BackupEngine]
log = logging.getLogger("zerotouch.backups")


def objective_checks(target: BackupTarget, rto: float | None, rpo: float | None) -> list[CheckResult]:
    """RTO and RPO against the target's objectives; a measurement that is missing is not a pass."""
    checks = []
    if rto is not None:
        limit = target.objectives.rto.total_seconds()
        checks.append(CheckResult(name="rto within objective", ok=rto <= limit,
                                  output=f"restore took {rto:.1f} s; objective {limit:.0f} s"))
    if rpo is not None:
        limit = target.objectives.rpo.total_seconds()
        checks.append(CheckResult(name="rpo within objective", ok=rpo <= limit,
                                  output=f"{rpo:.1f} s of writes lost; objective {limit:.0f} s"))
    return checks


class BackupActivities:
    def __init__(self, *, repository: str, engine_for: EngineFor, scratch_root: Path, state_dir: Path) -> None:
        self._default_repository = repository
        self._state_dir = state_dir
        self._engine_for = engine_for
        self._scratch_root = scratch_root

    def _repository(self, location: str) -> BackupRepository:
        return open_repository(location or self._default_repository, self._state_dir)

    @activity.defn(name=names.TAKE_BACKUP)
    @keeps_alive
    def take_backup(self, request: BackupRequest) -> BackupSummary:
        """Write the backup and publish it (manifest last); an ID already published is returned as is."""
        repository, target = self._repository(request.repository), request.target.with_paths_under(self._state_dir)
        existing = repository.find(target.name, request.backup_id)
        if existing is None:
            started = datetime.now(UTC)
            written = self._engine_for(target.engine).backup(target, repository.staging(target.name,
                                                                                       request.backup_id))
            repository.commit(BackupManifest(**written.model_dump(), id=request.backup_id, target=target.name,
                                             engine=target.engine, started_at=started, finished_at=datetime.now(UTC)))
            existing = repository.get(target.name, request.backup_id)
        return BackupSummary.of(existing)

    @activity.defn(name=names.VERIFY_BACKUP)
    @keeps_alive
    def verify_backup(self, request: VerificationRequest) -> VerificationReport:
        """Restore the backup into a scratch place, check it, clean up, and record the report."""
        repository, target = self._repository(request.repository), request.target.with_paths_under(self._state_dir)
        record = repository.get(target.name, request.backup_id)
        recorded = next((r for r in record.verifications if r.id == request.verification_id), None)
        if recorded is not None:
            return recorded  # a retry after the report was written
        report = restore_and_check(self._engine_for(target.engine), repository, target, request,
                              self._scratch_root / request.verification_id)
        repository.record_verification(report)
        return report

    @activity.defn(name=names.BACKUP_CATALOG)
    def backup_catalog(self, request: ListRequest) -> BackupCatalog:
        repository = self._repository(request.repository)
        return BackupCatalog(target=request.target,
                             backups=[BackupSummary.of(r) for r in repository.backups(request.target)])

    @activity.defn(name=names.APPLY_RETENTION)
    @keeps_alive
    def apply_retention(self, request: RetentionRequest) -> RetentionResult:
        """Delete what the target's retention does not keep (never the newest verified, never a held one)."""
        repository, target = self._repository(request.repository), request.target.with_paths_under(self._state_dir)
        records = repository.backups(target.name)
        decided = plan([Candidate(id=r.manifest.id, taken_at=r.manifest.started_at, verified=r.verified,
                                  on_hold=r.hold is not None) for r in records], target.retention)
        pruned = 0
        if not request.dry_run:
            for backup_id in decided.delete:
                repository.delete(target.name, backup_id)
            pruned = self._engine_for(target.engine).prune(
                target, [r.manifest for r in records if r.manifest.id in decided.keep])
        return RetentionResult(kept=decided.keep, deleted=decided.delete, wal_segments_deleted=pruned)


def restore_and_check(engine: BackupEngine, repository: BackupRepository, target: BackupTarget,
                 request: VerificationRequest, scratch: Path) -> VerificationReport:
    """One verification: the files against the manifest, the engine's restore and checks, the objectives.

    A killed attempt's leftovers under ``scratch`` are removed first, and the scratch place last,
    whatever happens (a cancellation included)."""
    record = repository.get(target.name, request.backup_id)
    engine.sweep(target, scratch)
    started, clock = datetime.now(UTC), time.monotonic()
    checks: list[CheckResult] = []
    files_seconds = 0.0
    try:
        problems = repository.check_files(record.manifest)
        files_seconds = round(time.monotonic() - clock, 3)
        checks.append(CheckResult(name="files match the manifest", ok=not problems,
                                  output="\n".join(problems) or f"{len(record.manifest.files)} files, sha256 match",
                                  seconds=files_seconds))
        restored = engine.verify(target, record.manifest, repository.data_path(target.name, request.backup_id),
                                 scratch=scratch, recovery_target_time=request.recovery_target_time)
    except CancelledError:
        raise  # cancelled or timed out: the finally below still removes the scratch place
    except Exception as error:  # an engine that cannot restore: a failed verification, with the reason
        log.exception("verification %s could not restore", request.verification_id)
        restored = EngineVerification(checks=[CheckResult(name="restore ran", ok=False,
                                                          output=f"{type(error).__name__}: {error}")])
    finally:
        engine.sweep(target, scratch)
    checks += restored.checks
    checks += objective_checks(target, restored.rto_seconds, restored.rpo_seconds)
    return VerificationReport(
        id=request.verification_id, backup_id=request.backup_id, target=target.name, engine=target.engine,
        started_at=started, finished_at=datetime.now(UTC), ok=bool(checks) and all(c.ok for c in checks),
        recovery_target=restored.recovery_target, rto_seconds=restored.rto_seconds,
        rpo_seconds=restored.rpo_seconds, newest_canary_at=restored.newest_canary_at,
        tool_versions=restored.tool_versions, durations={"files_sha256": files_seconds, **restored.durations},
        checks=checks,
    )

