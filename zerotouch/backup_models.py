"""What backups and their verifications record, and what workflows and activities exchange.

A backup's manifest is immutable and written last (`zerotouch.backup_repository`), so a backup
without one was never finished and is never listed. A verification report is the evidence of one
test restore: every check with its output, the measured RTO and RPO, the tools that ran.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from zerotouch.backups import BackupTarget, Engine


def backup_id_for(target: str, at: datetime) -> str:
    """One ID per target and (scheduled) time, so a retried or caught-up run finds its backup."""
    return f"{target}-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


class FileEntry(BaseModel):
    path: str = Field(description="relative to the backup's directory")
    size: int
    sha256: str


class TableStat(BaseModel):
    """A table (or collection, or kind) as it was: its row count and an order-independent content hash."""

    rows: int
    hash: str = ""


class EngineBackup(BaseModel):
    """What an engine reports after writing a backup's files into the staging directory."""

    method: str
    source: dict[str, str] = Field(default_factory=dict, description="identity: system identifier, version, database")
    tool_versions: dict[str, str] = Field(default_factory=dict)
    lsn_start: str = ""
    lsn_end: str = ""
    timeline: int | None = None
    wal_start_segment: str = Field(default="", description="physical: the first WAL segment the backup needs")
    restore_point: str = Field(default="", description="physical: the named restore point the table stats match")
    consistent_at: datetime | None = Field(default=None, description="when the recorded table stats were taken")
    tables: dict[str, TableStat] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)


class BackupManifest(EngineBackup):
    """A finished backup, as the repository lists it."""

    id: str
    target: str
    engine: Engine
    started_at: datetime
    finished_at: datetime
    files: list[FileEntry] = Field(default_factory=list)
    size_bytes: int = 0


class CheckResult(BaseModel):
    name: str
    ok: bool
    output: str = ""
    seconds: float = 0.0


class VerificationReport(BaseModel):
    """The evidence of one test restore. `ok` only when every check passed."""

    id: str
    backup_id: str
    target: str
    engine: Engine
    started_at: datetime
    finished_at: datetime
    ok: bool
    recovery_target: str = Field(default="", description="what recovery stopped at: a restore point, a time, latest")
    rto_seconds: float | None = Field(default=None, description="restore start → database answering the checks")
    rpo_seconds: float | None = Field(default=None, description="recovery target → newest canary row present")
    newest_canary_at: datetime | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    durations: dict[str, float] = Field(default_factory=dict, description="seconds per phase")
    checks: list[CheckResult] = Field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.ok]

    def summary(self) -> str:
        if self.ok:
            return f"verified: {len(self.checks)} checks passed"
        return "; ".join(f"{check.name}: {check.output.splitlines()[0] if check.output else 'failed'}"
                         for check in self.failures) or "verification failed"


class LegalHold(BaseModel):
    by: str
    reason: str
    at: datetime


class BackupRecord(BaseModel):
    """A listed backup: its manifest, its verifications (newest last) and any legal hold."""

    manifest: BackupManifest
    verifications: list[VerificationReport] = Field(default_factory=list)
    hold: LegalHold | None = None

    @property
    def last_verification(self) -> VerificationReport | None:
        return self.verifications[-1] if self.verifications else None

    @property
    def verified(self) -> bool:
        last = self.last_verification
        return bool(last and last.ok)


# --- what workflows hand to activities ---------------------------------------------------


class BackupRequest(BaseModel):
    target: BackupTarget
    backup_id: str
    repository: str = ""


class VerificationRequest(BaseModel):
    target: BackupTarget
    backup_id: str
    verification_id: str
    repository: str = ""
    recovery_target_time: datetime | None = Field(
        default=None, description="postgres physical: recover to this time (PITR); default: all archived WAL",
    )


class ListRequest(BaseModel):
    target: str
    repository: str = ""


class RetentionRequest(BaseModel):
    target: BackupTarget
    repository: str = ""
    now: datetime
    dry_run: bool = False


class RetentionResult(BaseModel):
    kept: dict[str, list[str]] = Field(default_factory=dict, description="backup ID → why it is kept")
    deleted: list[str] = Field(default_factory=list)
    wal_segments_deleted: int = 0


class EngineVerification(BaseModel):
    """What an engine reports after a test restore (the activity adds the manifest and objective checks)."""

    checks: list[CheckResult] = Field(default_factory=list)
    recovery_target: str = ""
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    newest_canary_at: datetime | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    durations: dict[str, float] = Field(default_factory=dict)


class BackupSummary(BaseModel):
    """A backup as workflows and lists see it (no file list: that stays in the repository)."""

    id: str
    target: str
    engine: Engine
    method: str
    started_at: datetime
    finished_at: datetime
    size_bytes: int
    consistent_at: datetime | None = None
    verified: bool | None = Field(default=None, description="the last verification's result; None: never verified")
    last_verification_id: str = ""
    on_hold: bool = False

    @classmethod
    def of(cls, record: BackupRecord) -> BackupSummary:
        manifest, last = record.manifest, record.last_verification
        return cls(id=manifest.id, target=manifest.target, engine=manifest.engine, method=manifest.method,
                   started_at=manifest.started_at, finished_at=manifest.finished_at, size_bytes=manifest.size_bytes,
                   consistent_at=manifest.consistent_at, verified=None if last is None else last.ok,
                   last_verification_id=last.id if last else "", on_hold=record.hold is not None)


class BackupCatalog(BaseModel):
    target: str
    backups: list[BackupSummary] = Field(default_factory=list, description="oldest first")

    def newest_unverified(self) -> BackupSummary | None:
        pending = [b for b in self.backups if b.verified is None]
        return pending[-1] if pending else None

    def newest(self) -> BackupSummary | None:
        return self.backups[-1] if self.backups else None


class BackupEvidence(BaseModel):
    """What the verification workflow hands the ledger."""

    report: VerificationReport
    workflow_id: str
    run_id: str
