"""One data-subject request's run: its status, its legal deadline, and what humans decided.

Nothing here is personal data: the subject is its pseudonym; counts, stores and decisions only.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.gdpr import add_months
    from zerotouch.gdpr_models import DsrEntry, DsrInput, DsrStatus, Outcome

TIMELINE_LIMIT = 200


class DsrRun:
    def __init__(self, params: DsrInput) -> None:
        self.params = params
        self.original_due = add_months(params.received_at, 1)  # GDPR Art. 12(3)
        self.status = DsrStatus(request_id=params.request_id, kind=params.kind, subject=params.subject,
                                received_at=params.received_at, due_at=self.original_due)
        self.log: list[DsrEntry] = []
        self.approved_by = ""
        self.decision_note = ""
        self.proof: ApprovalProof | None = None
        self.denied_by = ""
        self.cancelled_by = ""
        self.outcome: Outcome = "failed"

    def note(self, kind: str, message: str, actor: str = "zerotouch") -> None:
        self.log.append(DsrEntry(at=workflow.now(), kind=kind, message=message, actor=actor))
        self.status.timeline = self.log[-TIMELINE_LIMIT:]

    @property
    def due_at(self) -> datetime:
        return self.status.due_at

    @property
    def decided(self) -> bool:
        return bool(self.approved_by or self.denied_by or self.cancelled_by)

    def approve(self, by: str, note: str, proof: ApprovalProof | None, identity: str) -> None:
        self.approved_by, self.decision_note, self.proof = by, note, proof
        self.note("approved", f"approved ({identity}){': ' + note if note else ''}", actor=by)

    def deny(self, by: str, reason: str) -> None:
        self.denied_by, self.decision_note = by, reason
        self.note("denied", reason, actor=by)

    def cancel(self, by: str, reason: str) -> None:
        self.cancelled_by, self.decision_note = by, reason
        self.note("cancelled", reason, actor=by)

    def extend(self, by: str, months: int, reason: str) -> None:
        self.status.due_at, self.status.extended = add_months(self.original_due, months), True
        self.note("extended", f"due {self.status.due_at.isoformat(timespec='seconds')} ({months} more month(s)): "
                              f"{reason}", actor=by)

    def store_state(self, store: str, state: str) -> None:
        self.status.stores = {**self.status.stores, store: state}

    def end(self, outcome: Outcome, message: str) -> Outcome:
        self.outcome = outcome
        self.status.outcome, self.status.state = outcome, "done"
        self.note("outcome", f"{outcome}: {message}")
        return outcome
