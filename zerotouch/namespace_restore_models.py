"""What a namespace restore's activities take and answer: names, digests and short diffs, never object bodies.

The backup's objects stay in the repository: the workflow's history only carries which object is
created, left as is or overwritten, the digests of the backed-up and live versions, and a field-level
summary of the difference (ConfigMap values are named, not shown; Secrets are never read at all).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ChangeAction = Literal["create", "unchanged", "overwrite"]
NAMESPACE_RESTORE_RECORD = "namespace_restore"


class RestoreSource(BaseModel):
    """Which backup, where: the activities open the repository themselves."""

    repository: str = ""  # the policy's backups.repository ("" = the worker's default)
    backup_target: str
    backup_id: str = ""  # "" = the newest verified backup
    namespace: str  # the backed-up namespace
    into: str  # the destination namespace
    max_objects: int = 500


class ObjectChange(BaseModel):
    kind: str
    name: str
    action: ChangeAction
    backup_digest: str
    live_digest: str = ""  # "" = absent from the destination when planned
    diff: list[str] = Field(default_factory=list)  # overwrite: the fields that differ, one per line

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.name}"


class RestorePlan(BaseModel):
    backup_id: str
    backup_taken_at: datetime
    backup_verified: bool
    destination_exists: bool
    changes: list[ObjectChange] = Field(default_factory=list)
    left_alone: list[str] = Field(default_factory=list)  # "Kind name" only in the destination
    secrets: list[str] = Field(default_factory=list)  # referenced Secrets: "name (keys a, b)", never restored

    @property
    def overwrites(self) -> list[ObjectChange]:
        return [c for c in self.changes if c.action == "overwrite"]

    @property
    def creates(self) -> list[ObjectChange]:
        return [c for c in self.changes if c.action == "create"]


class RestoreApply(BaseModel):
    """Apply exactly the approved plan: an object that moved since it was planned is refused, not overwritten."""

    source: RestoreSource  # backup_id fixed to the planned one
    changes: list[ObjectChange]
    create_namespace: bool
    token: str  # the restore's label on what it creates (idempotent retries recognise their own)


class RestoreApplied(BaseModel):
    created: list[str] = Field(default_factory=list)
    replaced: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)  # a retry found it done


class RestoreCheck(BaseModel):
    source: RestoreSource
    changes: list[ObjectChange]
    timeout_seconds: float = 300
    poll_seconds: float = 0.5


class RestoreVerified(BaseModel):
    ok: bool
    digests: dict[str, str] = Field(default_factory=dict)  # "Kind name" → digest now in the destination
    problems: list[str] = Field(default_factory=list)


class NamespaceRestoreRecord(BaseModel):
    """A finished restore for the ledger: who, from which backup, and each object's digest before and after."""

    workflow_id: str
    run_id: str
    cluster: str
    namespace: str
    into: str
    backup_target: str
    backup_id: str
    dry_run: bool
    stage: str
    outcome: str
    requested_by: str = ""
    approval: str = ""
    started_at: datetime
    finished_at: datetime
    before: dict[str, str] = Field(default_factory=dict)  # "Kind name" → digest ("absent")
    after: dict[str, str] = Field(default_factory=dict)
    steps: list[str] = Field(default_factory=list)
