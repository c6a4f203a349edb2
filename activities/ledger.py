"""Recording a closed incident in the ledger: the record, its post-mortem, one append.

Idempotent by (incident_id, run_id): Temporal may retry the activity after the
append committed, and the retry must return the first receipt, not a second record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from zerotouch import activity_names as names
from zerotouch.backup_models import BackupEvidence
from zerotouch.gdpr_models import DsrReceipt
from zerotouch.gdpr_retention import RetentionRecord
from zerotouch.ledger_models import (
    AlertRef,
    HumanStep,
    LedgerAction,
    LedgerEntryInput,
    LedgerReceipt,
    LedgerRecord,
    LedgerVerification,
    Outcome,
)
from zerotouch.ledger_store import LedgerStore
from zerotouch.models import TimelineEntry
from zerotouch.postmortem import postmortem_markdown, redact, redact_labels
from zerotouch.rotation_models import RotationRecord

MACHINE_ACTORS = frozenset({"zerotouch", "alertmanager"})
_JOINED = "another alert joined: "


class LedgerActivities:
    def __init__(self, *, store: LedgerStore) -> None:
        self._store = store

    @activity.defn(name=names.APPEND_INCIDENT_RECORD)
    def append_incident_record(self, entry: LedgerEntryInput) -> LedgerReceipt:
        """Append the incident's immutable record (with its post-mortem) to the ledger."""
        return self._store.append(build_record(entry, recorded_at=datetime.now(UTC)))

    @activity.defn(name=names.APPEND_BACKUP_EVIDENCE)
    def append_backup_evidence(self, evidence: BackupEvidence) -> LedgerReceipt:
        """Append a test restore's report: one record per (verification, workflow run)."""
        return self._store.append(evidence_record(evidence, recorded_at=datetime.now(UTC)))


    @activity.defn(name=names.APPEND_ROTATION_RECORD)
    def append_rotation_record(self, record: RotationRecord) -> LedgerReceipt:
        """Append a rotation's run: one record per (rotation workflow, run); references only."""
        return self._store.append(rotation_record(record, recorded_at=datetime.now(UTC)))


    @activity.defn(name=names.APPEND_DSR_RECEIPT)
    def append_dsr_receipt(self, receipt: DsrReceipt) -> LedgerReceipt:
        """Append a data-subject request's receipt: one record per (request workflow, run); no personal data."""
        return self._store.append(dsr_record(receipt, recorded_at=datetime.now(UTC)))

    @activity.defn(name=names.APPEND_RETENTION_RECORD)
    def append_retention_record(self, record: RetentionRecord) -> LedgerReceipt:
        """Append a data-retention run: one record per (retention workflow, run); counts only."""
        return self._store.append(retention_record(record, recorded_at=datetime.now(UTC)))


_DSR_OUTCOME: dict[str, Outcome] = {
    "complete": "resolved", "nothing_found": "resolved", "denied": "closed", "cancelled": "aborted",
    "held": "closed", "planned": "closed", "partial": "escalated", "failed": "escalated",
}


def dsr_record(receipt: DsrReceipt, *, recorded_at: datetime) -> LedgerRecord:
    """A request's receipt as a ledger record (hash-chained like every record): the subject as its pseudonym."""
    lines = [f"# Data-subject request {receipt.request_id} ({receipt.kind})", "",
             f"subject {receipt.subject[:16]}…: {receipt.outcome}; filed by {receipt.requested_by} "
             f"({receipt.verification}); decided by {receipt.decided_by or '-'}; received "
             f"{receipt.received_at.isoformat(timespec='seconds')}, due {receipt.due_at.isoformat(timespec='seconds')}",
             "", *(f"- {s.store_name} ({s.kind}): matched {s.matched}, erased {s.erased}, after: "
                   f"{'-' if s.requery_matches is None else s.requery_matches}" for s in receipt.stores)]
    humans = [HumanStep(at=receipt.finished_at, actor=receipt.decided_by, kind="decided",
                        message=redact(receipt.decision_note))] if receipt.decided_by else []
    return LedgerRecord(
        incident_id=receipt.workflow_id, run_id=receipt.run_id, recorded_at=recorded_at,
        outcome=_DSR_OUTCOME[receipt.outcome], root_cause_class=f"gdpr-{receipt.kind}", target=receipt.subject,
        closed_at=receipt.finished_at, kind="dsr_receipt", automated=False, humans=humans,
        evidence={**receipt.model_dump(mode="json"), "decision_note": redact(receipt.decision_note)},
        postmortem="\n".join(lines),
    )


_RETENTION_OUTCOME: dict[str, Outcome] = {
    "complete": "resolved", "dry_run": "closed", "observe": "closed", "refused": "closed", "failed": "escalated",
}


def retention_record(record: RetentionRecord, *, recorded_at: datetime) -> LedgerRecord:
    """A retention run as a ledger record: rows per store and table (what was erased, or would be)."""
    verb = "erased" if record.mode == "erase" else "would erase"
    lines = [f"# Data retention{' (dry run)' if record.dry_run else ''}: {record.outcome}", "",
             f"{verb} {record.rows} row(s){'; ' + record.reason if record.reason else ''}", "",
             *(f"- {t.store_name}/{t.table}: {t.rows}{'+' if t.capped else ''} row(s) older than "
               f"{t.before.isoformat(timespec='seconds')} ({t.method}, {t.batches} batch(es))"
               f"{'; stopped: ' + redact(t.error) if t.error else ''}" for t in record.tables)]
    return LedgerRecord(
        incident_id=record.workflow_id, run_id=record.run_id, recorded_at=recorded_at,
        outcome=_RETENTION_OUTCOME[record.outcome], root_cause_class="gdpr-retention",
        target=", ".join(sorted({t.store_name for t in record.tables})), closed_at=record.finished_at,
        kind="retention", automated=_RETENTION_OUTCOME[record.outcome] != "escalated",
        evidence=record.model_dump(mode="json"), postmortem="\n".join(lines),
    )


_ROTATION_OUTCOME: dict[str, Outcome] = {
    "rotated": "resolved", "aborted": "aborted", "taken_over": "taken_over", "not_approved": "closed",
    "refused": "closed", "planned": "closed", "rolled_back": "escalated", "failed": "escalated",
    "revoke_held": "escalated",
}


def rotation_record(record: RotationRecord, *, recorded_at: datetime) -> LedgerRecord:
    """A rotation as a ledger record: its summary as evidence, its timeline as the post-mortem."""
    lines = [f"# Secret rotation {record.token} of {record.rotation}", "",
             f"{record.kind} credential in Secret {record.secret.describe()}: {record.outcome}; requested by "
             f"{record.requested_by}{', approved by ' + record.approved_by if record.approved_by else ''}; "
             f"consumers: {', '.join(record.consumers) or 'none'}", "", *(f"- {redact(line)}" for line in record.steps)]
    humans = [HumanStep(at=record.finished_at, actor=actor, kind=kind, message=f"{kind} rotation {record.token}")
              for actor, kind in ((record.requested_by, "requested"), (record.approved_by, "approved"))
              if actor and actor not in MACHINE_ACTORS and not actor.startswith("schedule")]
    return LedgerRecord(
        incident_id=record.workflow_id, run_id=record.run_id, recorded_at=recorded_at,
        outcome=_ROTATION_OUTCOME[record.outcome], root_cause_class="secret-rotation", target=record.secret.describe(),
        closed_at=record.finished_at, kind="secret_rotation",
        automated=not record.approved_by and _ROTATION_OUTCOME[record.outcome] != "escalated",
        evidence=record.model_dump(mode="json", exclude={"steps"}), humans=humans, postmortem="\n".join(lines),
    )


def evidence_record(evidence: BackupEvidence, *, recorded_at: datetime) -> LedgerRecord:
    """A verification as a ledger record: its report as evidence, its summary as the post-mortem."""
    report = evidence.report
    lines = [f"# Backup verification {report.id}", "",
             f"backup {report.backup_id} of {report.target} ({report.engine}): "
             f"{'verified' if report.ok else 'FAILED'}; recovery target {report.recovery_target or '-'}; "
             f"RTO {_fmt(report.rto_seconds)}; RPO {_fmt(report.rpo_seconds)}", ""]
    lines += [f"- {'ok ' if c.ok else 'FAIL'} {c.name}: {redact(c.output.splitlines()[0]) if c.output else ''}"
              for c in report.checks]
    return LedgerRecord(
        incident_id=f"backup-verification-{report.id}", run_id=evidence.run_id, recorded_at=recorded_at,
        outcome="resolved" if report.ok else "escalated", root_cause_class="backup-verification",
        target=report.target, closed_at=report.finished_at, automated=True, kind="backup_verification",
        evidence=report.model_dump(mode="json"), postmortem="\n".join(lines),
    )


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def build_record(entry: LedgerEntryInput, *, recorded_at: datetime) -> LedgerRecord:
    """The ledger record for a closed incident, redacted before anything is stored."""
    status = entry.status
    timeline = [
        TimelineEntry(at=e.at, kind=e.kind, message=redact(e.message), actor=redact(e.actor))
        for e in status.timeline
    ]
    alertname = status.labels.get("alertname", "")
    started = entry.first_alert_starts_at or status.detected_at
    recovered = status.resolved_at
    humans = [HumanStep(at=e.at, actor=e.actor, kind=e.kind, message=e.message)
              for e in timeline if e.actor not in MACHINE_ACTORS]
    record = LedgerRecord(
        incident_id=status.incident_id,
        run_id=entry.run_id,
        recorded_at=recorded_at,
        outcome=entry.outcome,
        severity=status.severity,
        runbook=status.runbook,
        root_cause_class=redact(status.runbook or alertname or "unknown"),
        confidence=status.confidence,
        target=redact(status.target),
        alerts=_alerts(status.labels, timeline),
        actions=_actions(entry, timeline),
        verifications=[
            LedgerVerification(at=e.at, verified=e.message.startswith("verified"),
                               detail=e.message.split(": ", 1)[-1])
            for e in timeline if e.kind == "verification"
        ],
        humans=humans,
        timeline=timeline,
        alert_started_at=started,
        detected_at=status.detected_at,
        triaged_at=_first(timeline, "triage"),
        first_action_at=_first_action(entry, timeline),
        recovered_at=recovered,
        closed_at=entry.closed_at,
        mttd_seconds=_seconds(started, status.detected_at),
        mttr_seconds=_seconds(started, recovered),
        # An escalation hands the incident to people even before anyone has acted.
        automated=not humans and entry.outcome != "escalated",
        user_impact=redact(entry.user_impact),
    )
    return record.model_copy(update={"postmortem": postmortem_markdown(record)})


def _alerts(labels: dict[str, str], timeline: list[TimelineEntry]) -> list[AlertRef]:
    # The status keeps the first alert's labels; later alerts are known by name from the timeline.
    alerts = [AlertRef(alertname=redact(labels.get("alertname", "unknown")), labels=redact_labels(labels))]
    for entry in timeline:
        if entry.kind == "detected" and entry.message.startswith(_JOINED):
            name = entry.message.removeprefix(_JOINED).rsplit(" (", 1)[0]
            alerts.append(AlertRef(alertname=name))
    return alerts


def _actions(entry: LedgerEntryInput, timeline: list[TimelineEntry]) -> list[LedgerAction]:
    grants = [e for e in timeline if e.kind == "grant" and e.message.startswith("granted")]
    actions = []
    for action in entry.status.actions:
        # The grant that allowed an action is the last one noted before the action finished.
        grant = next((g.message for g in reversed(grants) if g.at <= action.at), "")
        actions.append(LedgerAction(action=action.action, target=redact(action.target), attempt=action.attempt,
                                    grant=grant, outcome=action.outcome, detail=redact(action.detail),
                                    at=action.at))
    return actions


def _first(timeline: list[TimelineEntry], kind: str) -> datetime | None:
    return next((e.at for e in timeline if e.kind == kind), None)


def _first_action(entry: LedgerEntryInput, timeline: list[TimelineEntry]) -> datetime | None:
    started = next((e.at for e in timeline if e.kind == "action" and e.message.startswith("attempt ")), None)
    return started or (entry.status.actions[0].at if entry.status.actions else None)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else max(0.0, (end - start).total_seconds())
