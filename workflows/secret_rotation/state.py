"""One rotation's run: what the `status` query shows and what the humans' decisions change.

The credential itself is never here: only versions, stages, login names and who decided what.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.rotation_models import (
        RotationApproval,
        RotationEntry,
        RotationOutcome,
        RotationStatus,
        Stage,
    )
    from zerotouch.rotations import Rotation, RotationInput

TIMELINE_LIMIT = 200  # a status query stays small; the ledger record keeps the whole story


class RotationRun:
    """The state of one SecretRotationWorkflow run; every transition notes itself on the timeline."""

    def __init__(self, params: RotationInput, rotation: Rotation, token: str) -> None:
        self.params = params
        self.rotation = rotation
        self.status = RotationStatus(rotation=params.rotation, secret=rotation.secret, kind=rotation.target.kind,
                                     token=token, action=params.action, requested_by=params.requested_by)
        self.started_at = workflow.now()
        self.approval_proof: ApprovalProof | None = None
        self.approval_note = ""
        self.answered = False  # the pending approval was answered (approved, aborted or taken over)
        self.rollback_by: str | None = None
        self.aborted_by: str | None = None
        self.log: list[RotationEntry] = []
        self.outcome: RotationOutcome = "failed"  # until it ends otherwise

    @property
    def token(self) -> str:
        return self.status.token

    def note(self, kind: str, message: str, actor: str = "zerotouch") -> None:
        entry = RotationEntry(at=workflow.now(), kind=kind, message=message, actor=actor)
        self.log.append(entry)
        self.status.timeline = self.log[-TIMELINE_LIMIT:]

    def reached(self, stage: Stage, message: str) -> None:
        self.status.stage = stage
        self.note(stage, message)

    # --- approval ---------------------------------------------------------------------------------------------

    def ask_approval(self, plan: list[str], expires_at: datetime) -> RotationApproval:
        request = RotationApproval(request_id=f"rotate-{self.token}", requested_by=self.params.requested_by,
                                   requested_at=workflow.now(), expires_at=expires_at, plan=plan)
        self.status.pending_approval, self.status.state, self.answered = request, "awaiting_approval", False
        self.note("approval_requested", f"approval requested until {expires_at.isoformat(timespec='seconds')}")
        return request

    def approve(self, by: str, note: str, proof: ApprovalProof | None, identity: str) -> None:
        self.status.approved_by, self.approval_proof, self.approval_note = by, proof, note
        self.status.pending_approval, self.answered = None, True
        self.note("approved", f"approved ({identity}){': ' + note if note else ''}", actor=by)

    def abort(self, by: str, reason: str) -> None:
        self.aborted_by, self.answered = by, True
        self.status.pending_approval = None
        self.note("aborted", reason, actor=by)

    def take_over(self, by: str, note: str) -> None:
        self.status.owner, self.answered = by, True
        self.status.pending_approval = None
        self.note("taken_over", note or "taken over; zerotouch stops where it is", actor=by)

    def request_rollback(self, by: str, reason: str) -> None:
        self.rollback_by = by
        self.note("rollback_requested", reason, actor=by)

    @property
    def interrupted(self) -> bool:
        """A human asked to stop (abort, take over) or to go back (rollback)."""
        return self.aborted_by is not None or bool(self.status.owner) or self.rollback_by is not None

    def end(self, outcome: RotationOutcome, message: str) -> RotationOutcome:
        self.outcome = outcome
        self.status.outcome, self.status.state, self.status.pending_approval = outcome, "done", None
        self.note("outcome", f"{outcome}: {message}")
        return outcome
