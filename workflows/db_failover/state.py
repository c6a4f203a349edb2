"""One failover's run: what the ``recovery_status`` query shows, the step records, the humans' decisions.

No credential is ever here: addresses, roles, WAL positions and who decided what.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.db_failover_models import DatabaseFailoverRecord, FailoverStepRecord, FailoverStepResult
    from zerotouch.recovery import DatabaseFailoverInput, RecoveryEvent, RecoveryStage, RecoveryStatus
    from zerotouch.recovery_databases import DatabaseFailoverTarget

TIMELINE_LIMIT = 200  # a status query stays small; the ledger record keeps every step


@dataclass
class PendingApproval:
    request_id: str  # what a signed proof is bound to
    step: str  # promote | rejoin
    expires_at: datetime


class FailoverRun:
    """The state of one DatabaseFailoverWorkflow run; every transition notes itself on the timeline."""

    def __init__(self, params: DatabaseFailoverInput, target: DatabaseFailoverTarget, token: str) -> None:
        self.params, self.target, self.token = params, target, token
        self.status = RecoveryStatus(kind="database", target=params.database, cluster=params.cluster,
                                     dry_run=params.dry_run, reason=params.reason)
        self.started_at = workflow.now()
        self.records: list[FailoverStepRecord] = []
        self._pending: PendingApproval | None = None
        self.approved_by: list[str] = []
        self.approval_note = ""
        self.approval_proof: ApprovalProof | None = None
        self.aborted_by: str | None = None
        self.answered = False

    def note(self, step: str, outcome: str, detail: str = "", result: FailoverStepResult | None = None) -> None:
        now = workflow.now()
        self.status.timeline = [*self.status.timeline, RecoveryEvent(at=now, step=step, outcome=outcome,
                                                                     detail=detail)][-TIMELINE_LIMIT:]
        self.records.append(FailoverStepRecord(at=now, step=step, outcome=outcome, detail=detail,
                                               before=result.before if result else {},
                                               after=result.after if result else {}))

    def stepped(self, step: str, result: FailoverStepResult) -> FailoverStepResult:
        self.note(step, "ok" if result.ok else "failed", result.detail, result)
        return result

    # --- approval ---------------------------------------------------------------------------------------

    @property
    def pending(self) -> PendingApproval | None:
        return self._pending

    @pending.setter
    def pending(self, pending: PendingApproval | None) -> None:
        # The status names the request a proof must sign (`zerotouch recovery approve` reads it), and only
        # while one is pending: every transition below goes through here, so the two never disagree.
        self._pending = pending
        self.status.approval_request = pending.request_id if pending else ""

    def ask(self, step: str, expires_at: datetime) -> None:
        self.pending = PendingApproval(request_id=f"{self.token}-{step}", step=step, expires_at=expires_at)
        self.status.stage, self.status.approval, self.answered = "awaiting_approval", "pending", False
        self.note(f"approve_{step}", "waiting", f"approval of the {step} plan requested until "
                                                f"{expires_at.isoformat(timespec='seconds')}")

    def approve(self, by: str, note: str, proof: ApprovalProof | None, identity: str) -> None:
        assert self.pending is not None
        self.note(f"approve_{self.pending.step}", "ok", f"approved by {by} ({identity}){': ' + note if note else ''}")
        self.approved_by.append(by)
        self.approval_note, self.approval_proof = note, proof
        self.status.approval, self.pending, self.answered = f"approved by {by}", None, True
        self.status.stage = "running"

    def abort(self, by: str, reason: str) -> None:
        self.aborted_by, self.answered = by, True
        if self.pending is not None:
            self.status.approval = f"aborted by {by}"
        self.pending = None
        self.note("abort", "ok", f"aborted by {by}: {reason}")

    def timed_out(self) -> None:
        assert self.pending is not None
        self.note(f"approve_{self.pending.step}", "failed", "no approval in time: aborted, nothing approved")
        self.status.approval, self.pending = "timed out", None

    def end(self, stage: RecoveryStage, outcome: str) -> RecoveryStatus:
        self.status.stage, self.status.outcome, self.pending = stage, outcome, None
        self.note("outcome", stage, outcome)
        return self.status

    @property
    def over(self) -> bool:
        return self.status.stage in ("planned", "recovered", "refused", "aborted", "failed")

    def record(self) -> DatabaseFailoverRecord:
        info = workflow.info()
        return DatabaseFailoverRecord(
            database=self.params.database, workflow_id=info.workflow_id, run_id=info.run_id,
            stage=self.status.stage, outcome=self.status.outcome, requested_by=self.params.requested_by,
            approved_by=self.approved_by, reason=self.params.reason, started_at=self.started_at,
            finished_at=workflow.now(), plan=self.status.plan, steps=self.records)
