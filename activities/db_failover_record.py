"""A database failover in the ledger: its steps with the roles and WAL positions before and after each."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from zerotouch import activity_names as names
from zerotouch.db_failover_models import DatabaseFailoverRecord
from zerotouch.ledger_models import HumanStep, LedgerReceipt, LedgerRecord, Outcome
from zerotouch.ledger_store import LedgerStore
from zerotouch.postmortem import redact

_OUTCOME: dict[str, Outcome] = {"recovered": "resolved", "planned": "closed", "refused": "escalated",
                                "aborted": "aborted", "failed": "escalated"}


class DatabaseFailoverLedger:
    def __init__(self, *, store: LedgerStore) -> None:
        self._store = store

    @activity.defn(name=names.APPEND_DB_FAILOVER_RECORD)
    def append_db_failover_record(self, record: DatabaseFailoverRecord) -> LedgerReceipt:
        """Append a failover's run: one record per (workflow, run); idempotent on retries."""
        return self._store.append(failover_record(record, recorded_at=datetime.now(UTC)))


def failover_record(record: DatabaseFailoverRecord, *, recorded_at: datetime) -> LedgerRecord:
    lines = [f"# Database failover of {record.database}", "", f"{record.stage}: {redact(record.outcome)}", "",
             *(f"- {s.at.isoformat(timespec='seconds')} {s.step} {s.outcome}: {redact(s.detail)} "
               f"(before {s.before or '-'}, after {s.after or '-'})" for s in record.steps)]
    humans = [HumanStep(at=record.finished_at, actor=actor, kind="approved",
                        message=f"approved a step of {record.database}'s failover") for actor in record.approved_by]
    outcome = _OUTCOME.get(record.stage, "escalated")
    return LedgerRecord(
        incident_id=record.workflow_id, run_id=record.run_id, recorded_at=recorded_at, outcome=outcome,
        root_cause_class="database-failover", target=record.database, closed_at=record.finished_at,
        kind="database_failover", automated=not record.approved_by and outcome != "escalated",
        evidence=record.model_dump(mode="json"), humans=humans, postmortem="\n".join(lines),
    )
