"""A node recovery in the ledger: one record per (workflow, run), every step with its before and after."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from zerotouch import activity_names as names
from zerotouch.ledger_models import LedgerReceipt, LedgerRecord, Outcome
from zerotouch.ledger_store import LedgerStore
from zerotouch.node_recovery_models import NodeRecoveryRecord

_OUTCOME: dict[str, Outcome] = {
    "recovered": "resolved", "planned": "closed", "refused": "escalated", "aborted": "aborted",
    "failed": "escalated",
}


def node_recovery_record(record: NodeRecoveryRecord, *, recorded_at: datetime) -> LedgerRecord:
    """The recovery's plan and timeline as the post-mortem, the node before and after as evidence."""
    lines = [f"# Node recovery of {record.node}: {record.stage}", "", record.outcome, "",
             f"requested by {record.requested_by or '-'} ({record.reason or 'no reason given'})"
             f"{'; ' + record.approval if record.approval else ''}", "", "## Plan", "",
             *(f"- {line}" for line in record.plan), "", "## Steps", "",
             *(f"- {e.at.isoformat(timespec='seconds')} {e.step}: {e.outcome} {e.detail}".rstrip()
               for e in record.timeline)]
    outcome = _OUTCOME.get(record.stage, "escalated")
    return LedgerRecord(
        incident_id=record.workflow_id, run_id=record.run_id, recorded_at=recorded_at, outcome=outcome,
        root_cause_class="node-recovery", target=f"node/{record.node}", closed_at=record.finished_at,
        kind="node_recovery", automated=outcome in ("resolved", "closed") and not record.approval,
        evidence=record.model_dump(mode="json"), postmortem="\n".join(lines),
    )


class NodeRecoveryLedgerActivities:
    def __init__(self, *, store: LedgerStore) -> None:
        self._store = store

    @activity.defn(name=names.APPEND_NODE_RECOVERY_RECORD)
    def append_node_recovery_record(self, record: NodeRecoveryRecord) -> LedgerReceipt:
        """Append a node recovery's record (idempotent by workflow and run)."""
        return self._store.append(node_recovery_record(record, recorded_at=datetime.now(UTC)))
