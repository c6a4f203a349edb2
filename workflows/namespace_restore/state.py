"""One namespace restore's run: the `recovery_status` it answers and what the humans' decisions change."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.namespace_restore_models import RestorePlan
    from zerotouch.recovery import NamespaceRestoreInput, RecoveryEvent, RecoveryStage, RecoveryStatus

TIMELINE_LIMIT = 200  # a query stays small; the ledger record keeps the whole story


class RestoreRun:
    """The state of one NamespaceRestoreWorkflow run; every transition notes itself on the timeline."""

    def __init__(self, params: NamespaceRestoreInput, into: str, token: str) -> None:
        self.params, self.into, self.token = params, into, token
        self.status = RecoveryStatus(kind="namespace", target=into, cluster=params.cluster, dry_run=params.dry_run,
                                     reason=params.reason or f"restore {params.namespace} from "
                                            f"{params.backup_target} requested by {params.requested_by or '-'}")
        self.started_at = workflow.now()
        self.log: list[RecoveryEvent] = []
        self.expires_at: datetime | None = None
        self.approved_by = ""
        self.approval_note = ""
        self.approval_proof: ApprovalProof | None = None
        self.aborted_by = ""
        self.applying = False  # once the writes began, an abort can no longer stop them
        self.backup_id = params.backup_id
        self.before: dict[str, str] = {}
        self.after: dict[str, str] = {}

    def note(self, step: str, outcome: str, detail: str = "") -> None:
        self.log.append(RecoveryEvent(at=workflow.now(), step=step, outcome=outcome, detail=detail))
        self.status.timeline = self.log[-TIMELINE_LIMIT:]

    def stage(self, stage: RecoveryStage, detail: str) -> None:
        self.status.stage = stage
        self.note(stage, "ok", detail)

    def planned(self, plan: RestorePlan) -> None:
        self.backup_id = plan.backup_id
        self.before = {c.ref: c.live_digest or "absent" for c in plan.changes}
        self.status.plan = plan_lines(plan, self.into)
        self.note("plan", "ok", f"backup {plan.backup_id}: {len(plan.creates)} to create, "
                                f"{len(plan.overwrites)} to overwrite, {len(plan.left_alone)} left alone")

    # --- approval ---------------------------------------------------------------------------------------------

    @property
    def request_id(self) -> str:
        return f"restore-{self.token}"

    @property
    def pending(self) -> bool:
        return self.status.approval == "pending"

    def ask_approval(self, expires_at: datetime) -> None:
        self.expires_at = expires_at
        self.status.stage, self.status.approval = "awaiting_approval", "pending"
        self.status.approval_request = self.request_id  # what `zerotouch recovery approve` signs
        self.note("approval", "waiting", f"approval requested until {expires_at.isoformat(timespec='seconds')}")

    def approve(self, by: str, note: str, proof: ApprovalProof | None, identity: str) -> None:
        self.approved_by, self.approval_note, self.approval_proof = by, note, proof
        self.status.approval, self.status.approval_request = f"approved by {by}", ""
        self.note("approval", "ok", f"approved by {by} ({identity}){': ' + note if note else ''}")

    def abort(self, by: str, reason: str) -> None:
        self.aborted_by = by
        self.status.approval, self.status.approval_request = f"aborted by {by}", ""
        self.note("abort", "ok", f"aborted by {by}: {reason}")

    @property
    def answered(self) -> bool:
        return bool(self.approved_by or self.aborted_by)

    def end(self, stage: RecoveryStage, outcome: str) -> RecoveryStatus:
        self.status.stage, self.status.outcome, self.status.approval_request = stage, outcome, ""
        self.note("outcome", "failed" if stage in ("failed", "refused") else "ok", f"{stage}: {outcome}")
        return self.status


def plan_lines(plan: RestorePlan, into: str) -> list[str]:
    """What the approver approves: each object's fate, the overwrites with their field-level diff."""
    lines = [f"backup {plan.backup_id} taken {plan.backup_taken_at.isoformat(timespec='seconds')}"
             f"{'' if plan.backup_verified else ' (NOT verified)'} into "
             f"{'existing' if plan.destination_exists else 'new'} namespace {into}"]
    for change in plan.changes:
        if change.action == "overwrite":
            lines.append(f"overwrite {change.ref}: {'; '.join(change.diff) or 'metadata differs'}")
        else:
            lines.append(f"{change.action} {change.ref}")
    lines += [f"leave alone {ref} (not in the backup)" for ref in plan.left_alone]
    lines += [f"Secret {ref}: not restored (backups hold no Secret values); it must exist in {into}"
              for ref in plan.secrets]
    return lines
