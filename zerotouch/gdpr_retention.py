"""What the data-retention workflow and its activities exchange: stores, tables, cut-offs and counts.

DataRetentionWorkflow erases rows older than each table's `retention.keep` (the policy's data map,
`zerotouch.gdpr.Retention`), one bounded batch per activity call. Nothing here is personal data:
store and table names, cut-off times, row counts.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zerotouch.gdpr import Store

DATA_RETENTION_WORKFLOW: Final = "DataRetentionWorkflow"
RETENTION_GRANT_ACTION: Final = "expire_rows"
RETENTION_RUNBOOK: Final = "gdpr-retention"
COUNT_CAP: Final = 100_000
"""A dry run counts at most this many rows per table (the engines' largest batch); more shows as `capped`."""

_STORE_NAME = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"

RetentionMode = Literal["erase", "dry_run", "observe"]
RetentionOutcome = Literal["complete", "dry_run", "observe", "refused", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataRetentionArgs(_Model):
    """The arguments of DataRetentionWorkflow (a schedule's `arguments:`)."""

    stores: list[str] = Field(default_factory=list, description="gdpr stores to expire (default: every store)")
    dry_run: bool = Field(default=False, description="count what would be erased; change nothing")

    @field_validator("stores")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not re.match(_STORE_NAME, name)]
        if bad:
            raise ValueError(f"store names are lower-case DNS labels: {bad}")
        return value


class TableRetention(_Model):
    """One table's part of a run: its cut-off, and what was erased (or, in a dry run, would be)."""

    store_name: str
    table: str
    before: datetime = Field(description="rows older than this (by the retention column) are erased")
    method: str = Field(description="delete, or fields")
    rows: int = 0
    batches: int = 0
    capped: bool = Field(default=False, description="a dry run's count reached COUNT_CAP: at least that many")
    done: bool = False
    error: str = Field(default="", description="why this table stopped (a table name and a condition, no values)")


class RetentionProgress(_Model):
    """Carried across continue-as-new: the cut-offs, the counts so far, the Governor's grant."""

    started_at: datetime
    mode: RetentionMode
    grant_id: str = ""
    tables: list[TableRetention] = Field(default_factory=list)
    runs: int = 1


class DataRetentionInput(_Model):
    """What starts DataRetentionWorkflow (a schedule's action, or `progress` on continue-as-new)."""

    schedule: str = Field(default="", description="the schedule's name; empty when started by hand")
    cluster: str = ""
    scheduled_time: datetime | None = None
    arguments: DataRetentionArgs = Field(default_factory=DataRetentionArgs)
    progress: RetentionProgress | None = None
    batches_per_run: int = Field(default=1000, ge=1, le=10_000,
                                 description="continue as new after this many batches: bounds the history's size")


class ExpireBatch(_Model):
    """One table of one store: erase (or count) rows older than ``before``."""

    store_name: str
    store: Store
    table: str
    before: datetime
    dry_run: bool = False
    key_env: str = Field(default="ZEROTOUCH_GDPR_KEY", description="the variable keying pseudonymised fields")


class ExpiredRows(_Model):
    store_name: str
    table: str
    rows: int = Field(description="rows erased by this batch (0: none left); a count: rows older than the cut-off")
    capped: bool = False


class RetentionRecord(_Model):
    """What the ledger keeps of a retention run: counts per store and table, no personal data."""

    workflow_id: str
    run_id: str
    schedule: str = ""
    dry_run: bool
    mode: RetentionMode
    outcome: RetentionOutcome
    reason: str = ""
    started_at: datetime
    finished_at: datetime
    runs: int = Field(default=1, description="workflow runs the pass took (continue-as-new)")
    tables: list[TableRetention] = Field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)
