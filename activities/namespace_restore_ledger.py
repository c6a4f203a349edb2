"""A finished namespace restore in the ledger (zerotouch-observe queue): one record per (workflow, run).

The record holds object names and digests before and after, never an object's content: a
restore's evidence is what changed and that it now matches the backup, not the data itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.ledger import MACHINE_ACTORS
from zerotouch import activity_names as names
from zerotouch.ledger_models import HumanStep, LedgerReceipt, LedgerRecord, Outcome
from zerotouch.ledger_store import LedgerStore
from zerotouch.namespace_restore_models import NAMESPACE_RESTORE_RECORD, NamespaceRestoreRecord
from zerotouch.postmortem import redact

_OUTCOME: dict[str, Outcome] = {"recovered": "resolved", "planned": "closed", "aborted": "aborted",
                                "refused": "escalated", "failed": "escalated"}


class NamespaceRestoreLedger:
    def __init__(self, *, store: LedgerStore) -> None:
        self._store = store

    @activity.defn(name=names.APPEND_NAMESPACE_RESTORE_RECORD)
    def append_namespace_restore_record(self, record: NamespaceRestoreRecord) -> LedgerReceipt:
        """Append a namespace restore: its backup, who decided, each object's digest before and after."""
        return self._store.append(restore_record(record, recorded_at=datetime.now(UTC)))


def restore_record(record: NamespaceRestoreRecord, *, recorded_at: datetime) -> LedgerRecord:
    changed = sorted(k for k in record.after if record.after[k] != record.before.get(k, "absent"))
    lines = [f"# Namespace restore of {record.namespace} into {record.into}", "",
             f"backup {record.backup_id} of {record.backup_target}: {record.stage}"
             f"{' (dry run)' if record.dry_run else ''}; requested by {record.requested_by or '-'}; "
             f"approval: {record.approval or 'not needed'}; {record.outcome}", "",
             *(f"- changed {ref}: {record.before.get(ref, 'absent')} → {record.after[ref]}" for ref in changed),
             "", *(f"- {redact(line)}" for line in record.steps)]
    approver = record.approval.removeprefix("approved by ") if record.approval.startswith("approved by ") else ""
    humans = [HumanStep(at=record.finished_at, actor=actor, kind=kind, message=f"{kind} the restore of {record.into}")
              for actor, kind in ((record.requested_by, "requested"), (approver, "approved"))
              if actor and actor not in MACHINE_ACTORS]
    outcome = _OUTCOME.get(record.stage, "escalated")
    return LedgerRecord(
        incident_id=record.workflow_id, run_id=record.run_id, recorded_at=recorded_at, outcome=outcome,
        root_cause_class="namespace-restore", target=f"{record.cluster or '-'}/{record.into}",
        closed_at=record.finished_at, kind=NAMESPACE_RESTORE_RECORD,
        automated=not approver and outcome != "escalated",
        evidence=record.model_dump(mode="json", exclude={"steps"}), humans=humans, postmortem="\n".join(lines),
    )
