"""The policy's ``backups:`` section: what is backed up, how it is proven restorable, how long it is kept.

Every target names its engine (PostgreSQL physical or logical, MongoDB, Kubernetes objects), a
connection *reference* the backup worker resolves from its own environment (credentials never
enter workflow history), the checks a test restore must pass, its recovery objectives and its
retention. Schedules for backups, verification and retention are ordinary `schedules:` entries
that start `BackupWorkflow`, `BackupVerificationWorkflow` and `BackupRetentionWorkflow`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerotouch.durations import Duration

Engine = Literal["postgres", "mongodb", "kubernetes"]
PostgresMethod = Literal["physical", "logical"]

BACKUP_WORKFLOW: Final = "BackupWorkflow"
VERIFICATION_WORKFLOW: Final = "BackupVerificationWorkflow"
RETENTION_WORKFLOW: Final = "BackupRetentionWorkflow"
FAILURE_ALERT: Final = "BackupVerificationFailed"
"""The alert name a failed backup or verification opens its incident with."""

TARGET_NAME: Final = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"
_QUALIFIED_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$")
_COLLECTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}$")
_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CONNECTION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqlAssertion(_Model):
    """A user's statement about restored data: one SELECT returning one boolean, run on the scratch copy only."""

    name: str = Field(min_length=1, max_length=120)
    sql: str = Field(min_length=1, max_length=4000, description="e.g. SELECT count(*) > 0 FROM orders WHERE ...")

    @field_validator("sql")
    @classmethod
    def _one_select(cls, value: str) -> str:
        text = value.strip().rstrip(";").strip()
        if ";" in text:
            raise ValueError("one statement only (no ';' inside)")
        if not re.match(r"(?is)^(select|with)\b", text):
            raise ValueError("must be a SELECT (or WITH ... SELECT) returning one boolean")
        return text


class Objectives(_Model):
    """Recovery objectives (critical-gaps-roadmap: the main database RTO 1 h, RPO 15 min)."""

    rto: Duration = Field(default=timedelta(hours=1), description="a verification restoring slower than this fails")
    rpo: Duration = Field(default=timedelta(minutes=15), description="a verification losing more than this fails")
    verify_within: Duration = Field(
        default=timedelta(days=8), description="no successful verification this long is an incident (weekly + 1 day)"
    )
    backup_within: Duration = Field(
        default=timedelta(hours=25), description="no new backup for this long is an incident (adr-037: 25 hours)"
    )


class Retention(_Model):
    """Grandfather-father-son: the newest backup of each of the last N days, weeks and months is kept."""

    daily: int = Field(default=7, ge=0, le=3660)
    weekly: int = Field(default=4, ge=0, le=520)
    monthly: int = Field(default=12, ge=0, le=1200)

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if self.daily + self.weekly + self.monthly == 0:
            raise ValueError("retention keeps nothing: set at least one of daily, weekly, monthly")
        return self


class BackupTarget(_Model):
    """One thing that is backed up and proven restorable."""

    def with_paths_under(self, state_dir: Path) -> BackupTarget:
        """The target with a relative `wal_archive` made absolute in ``state_dir`` (what engines get)."""
        if not self.wal_archive or self.wal_archive.startswith("/"):
            return self
        return self.model_copy(update={"wal_archive": str(state_dir.resolve() / self.wal_archive)})

    name: str = Field(pattern=TARGET_NAME, description="names the target in backup IDs, metrics and incidents")
    engine: Engine
    method: PostgresMethod = Field(default="logical", description="postgres: physical (pg_basebackup + WAL) or logical")
    connection: str = Field(
        default="", description="reference the worker resolves: ZEROTOUCH_PG_<REF>_DSN / ZEROTOUCH_MONGO_<REF>_URL",
    )
    database: str = Field(default="", max_length=63, description="postgres/mongodb: the database backed up")
    wal_archive: str = Field(
        default="", description="postgres physical: the directory the source archives WAL into (relative: in the "
                                "backup worker's state directory)")
    canary_table: str = Field(
        default="", description="postgres: a table with a `written_at timestamptz` row written every second (RPO)",
    )
    tables: list[str] = Field(
        default_factory=list, description="postgres: tables whose row count and content hash must match after restore",
    )
    collections: list[str] = Field(default_factory=list, description="mongodb: collections to back up (empty: all)")
    namespaces: list[str] = Field(default_factory=list, description="kubernetes: namespaces whose objects are exported")
    assertions: list[SqlAssertion] = Field(default_factory=list)
    objectives: Objectives = Field(default_factory=Objectives)
    retention: Retention = Field(default_factory=Retention)

    @field_validator("tables", "canary_table")
    @classmethod
    def _tables(cls, value: list[str] | str) -> list[str] | str:
        for table in [value] if isinstance(value, str) else value:
            if table and not _QUALIFIED_TABLE.match(table):
                raise ValueError(f"bad table name {table!r}: use name or schema.name")
        return value

    @field_validator("collections")
    @classmethod
    def _collections(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _COLLECTION.match(c) or c.startswith("system.")]
        if bad:
            raise ValueError(f"bad collection name(s) {bad}")
        return value

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        bad = [n for n in value if not _NAMESPACE.match(n)]
        if bad:
            raise ValueError(f"bad namespace name(s) {bad}")
        return value

    @model_validator(mode="after")
    def _engine_fields(self) -> BackupTarget:
        if self.engine in ("postgres", "mongodb"):
            if not _CONNECTION.match(self.connection):
                raise ValueError(f"target {self.name}: {self.engine} needs `connection` (a reference like `main`)")
            if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$", self.database):
                raise ValueError(f"target {self.name}: {self.engine} needs `database` (letters, digits, _ and -)")
        physical = self.engine == "postgres" and self.method == "physical"
        if physical and (not re.match(r"^[A-Za-z0-9_./-]+$", self.wal_archive) or ".." in self.wal_archive):
            raise ValueError(f"target {self.name}: physical backups need `wal_archive`, a path of letters, digits, "
                             "_ . / - (relative: in the backup worker's state directory)")
        if self.engine == "kubernetes" and not self.namespaces:
            raise ValueError(f"target {self.name}: kubernetes backups need `namespaces`")
        if self.engine != "postgres" and (self.tables or self.assertions or self.canary_table or self.wal_archive):
            raise ValueError(f"target {self.name}: tables, assertions, canary_table and wal_archive are postgres-only")
        return self


class BackupsPolicy(_Model):
    """Where backups are kept and what is backed up."""

    repository: str = Field(
        default="", description="directory of the backup repository; empty: `backups/` in the state directory",
    )
    targets: list[BackupTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> BackupsPolicy:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"backup target names must be unique: {duplicates}")
        return self

    def target(self, name: str) -> BackupTarget:
        """The target called ``name``; KeyError naming the known ones."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none"
        raise KeyError(f"no backup target {name!r} in the policy (targets: {known})")


# --- what schedules and the CLI start -----------------------------------------------------


class BackupArgs(_Model):
    """The arguments of BackupWorkflow."""

    target: str = Field(pattern=TARGET_NAME, description="a name in the policy's backups.targets")
    verify: bool = Field(default=False, description="verify it by a test restore right after (a child workflow)")


class VerifyArgs(_Model):
    """The arguments of BackupVerificationWorkflow."""

    target: str = Field(pattern=TARGET_NAME)
    backup_id: str = Field(default="", max_length=120, description="default: the newest unverified backup, "
                                                                   "else the newest")
    recovery_target_time: datetime | None = Field(default=None, description="PITR target (physical PostgreSQL)")


class RetentionArgs(_Model):
    """The arguments of BackupRetentionWorkflow."""

    targets: list[str] = Field(default_factory=list, description="default: every target in the policy")
    dry_run: bool = False


class _RunInput(_Model):
    schedule: str = Field(default="", description="the schedule's name; empty when started by hand")
    cluster: str = ""
    scheduled_time: datetime | None = Field(
        default=None, description="only for runs started by hand; a schedule's runs read TemporalScheduledStartTime")


class BackupInput(_RunInput):
    arguments: BackupArgs


class VerifyInput(_RunInput):
    arguments: VerifyArgs


class RetentionInput(_RunInput):
    arguments: RetentionArgs


BACKUP_ARGUMENTS: Final[dict[str, type[BaseModel]]] = {
    BACKUP_WORKFLOW: BackupArgs, VERIFICATION_WORKFLOW: VerifyArgs, RETENTION_WORKFLOW: RetentionArgs}
BACKUP_INPUTS: Final[dict[str, type[BaseModel]]] = {
    BACKUP_WORKFLOW: BackupInput, VERIFICATION_WORKFLOW: VerifyInput, RETENTION_WORKFLOW: RetentionInput}


def targets_named(arguments: BaseModel) -> list[str]:
    """The targets a backup workflow's arguments refer to (the policy checks they exist)."""
    if isinstance(arguments, RetentionArgs):
        return list(arguments.targets)
    return [str(getattr(arguments, "target", ""))]
