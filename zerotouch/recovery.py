"""Recovery: the policy section and the shape every recovery workflow shares.

Three workflows recover three layers — a node (``NodeRecoveryWorkflow``), a PostgreSQL primary
(``DatabaseFailoverWorkflow``), a namespace from its object backup (``NamespaceRestoreWorkflow``).
They share one contract so that ``zerotouch recovery list|show|plan`` reads them all alike:

- the workflow ID names what is recovered (``recovery_id``), so two recoveries of one node,
  database or namespace can never run at once;
- the run's input carries ``dry_run``: a dry run computes the plan, records it and changes nothing;
- the ``recovery_status`` query and the workflow's result are a ``RecoveryStatus``;
- humans decide through the incidents' ``approve`` / ``abort`` updates (same argument models).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from .recovery_databases import DatabaseFailoverTarget
from .recovery_namespaces import NamespaceRestorePolicy
from .recovery_nodes import NodeRecoveryPolicy
from .runbooks import PolicyModel

NODE_RECOVERY_WORKFLOW = "NodeRecoveryWorkflow"
DATABASE_FAILOVER_WORKFLOW = "DatabaseFailoverWorkflow"
NAMESPACE_RESTORE_WORKFLOW = "NamespaceRestoreWorkflow"
RECOVERY_WORKFLOWS = (NODE_RECOVERY_WORKFLOW, DATABASE_FAILOVER_WORKFLOW, NAMESPACE_RESTORE_WORKFLOW)
QUERY_RECOVERY_STATUS = "recovery_status"

RecoveryKind = Literal["node", "database", "namespace"]
RecoveryStage = Literal[
    "planning",           # reading the world, computing the plan
    "planned",            # a dry run ended here: nothing changed
    "awaiting_approval",  # the plan waits for a human (approve / abort)
    "running",            # acting
    "recovered",          # done, verified
    "refused",            # a guardrail or a bound said no; escalated, nothing (more) changed
    "aborted",            # a human aborted, or the approval timed out
    "failed",             # a step kept failing; escalated
]
FINAL_STAGES: frozenset[str] = frozenset({"planned", "recovered", "refused", "aborted", "failed"})


class RecoveryPolicy(PolicyModel):
    """The policy's ``recovery`` section."""

    nodes: NodeRecoveryPolicy = Field(default_factory=NodeRecoveryPolicy)
    databases: dict[str, DatabaseFailoverTarget] = Field(
        default_factory=dict, description="PostgreSQL primaries zerotouch may fail over, by name",
    )
    namespaces: NamespaceRestorePolicy = Field(default_factory=NamespaceRestorePolicy)


class RecoveryEvent(BaseModel):
    """One line of a recovery's timeline (also what the ledger records, with before/after)."""

    at: datetime
    step: str
    outcome: str  # ok | failed | refused | skipped | waiting
    detail: str = ""


class RecoveryStatus(BaseModel):
    """What a recovery is doing or did: the ``recovery_status`` query and the workflow's result."""

    kind: RecoveryKind
    target: str  # the node, the database's policy name, or the namespace
    cluster: str = ""
    stage: RecoveryStage = "planning"
    dry_run: bool = False
    reason: str = ""  # what started it: an alert, the watchdog, a person
    plan: list[str] = Field(default_factory=list)  # one line per action, in order
    approval: str = ""  # "" (none needed), "pending", "approved by X", "timed out", "aborted by X"
    approval_request: str = ""  # while pending: the request id a signed approval proof is bound to
    incident_id: str = ""  # the escalation, when one was opened
    timeline: list[RecoveryEvent] = Field(default_factory=list)
    outcome: str = ""  # one sentence once final


class NodeRecoveryInput(BaseModel):
    cluster: str
    node: str
    reason: str = ""
    dry_run: bool = False
    requested_by: str = ""


class DatabaseFailoverInput(BaseModel):
    database: str  # a key of the policy's recovery.databases
    reason: str = ""
    dry_run: bool = False
    requested_by: str = ""
    cluster: str = ""  # the cluster scope of the task queues (and of the Governor) it runs on


class NamespaceRestoreInput(BaseModel):
    cluster: str
    namespace: str  # the namespace whose object backup is restored
    backup_target: str  # a kubernetes target of the policy's backups.targets
    backup_id: str = ""  # "" = the newest verified backup
    into_namespace: str = ""  # "" = the same namespace
    dry_run: bool = False
    requested_by: str = ""
    reason: str = ""


def recovery_id(kind: RecoveryKind, *parts: str) -> str:
    """``zerotouch-recovery-<kind>-<parts...>``: one running recovery per node, database or namespace."""
    return "-".join(["zerotouch-recovery", kind, *(p for p in parts if p)])
