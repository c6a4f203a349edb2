"""One node recovery's run: the `recovery_status` it answers and what the humans' decisions change."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.recovery import NodeRecoveryInput, RecoveryEvent, RecoveryStage, RecoveryStatus
    from zerotouch.recovery_nodes import NodeRecoveryPolicy

TIMELINE_LIMIT = 200  # a status query stays small; the ledger record keeps the whole story


class NodeRun:
    """The state of one NodeRecoveryWorkflow run; every step notes itself on the timeline."""

    def __init__(self, params: NodeRecoveryInput, policy: NodeRecoveryPolicy) -> None:
        self.params = params
        self.policy = policy
        self.status = RecoveryStatus(kind="node", target=params.node, cluster=params.cluster,
                                     dry_run=params.dry_run, reason=params.reason)
        self.events: list[RecoveryEvent] = []
        self.before: dict[str, str] = {}
        self.after: dict[str, str] = {}
        self.cordoned = False  # we own a cordon on the node: compensation must uncordon or escalate
        self.lease_held = False
        self.approved_by = ""
        self.approval_proof: ApprovalProof | None = None
        self.approval_note = ""
        self.aborted_by = ""
        self.awaiting = False

    @property
    def workflow_id(self) -> str:
        return workflow.info().workflow_id

    def note(self, step: str, outcome: str, detail: str = "") -> None:
        self.events.append(RecoveryEvent(at=workflow.now(), step=step, outcome=outcome, detail=detail))
        self.status.timeline = self.events[-TIMELINE_LIMIT:]

    def stage(self, stage: RecoveryStage) -> None:
        self.status.stage = stage

    def end(self, stage: RecoveryStage, outcome: str) -> RecoveryStatus:
        self.status.stage, self.status.outcome = stage, outcome
        self.awaiting, self.status.approval_request = False, ""
        self.note("outcome", stage, outcome)
        return self.status

    # --- humans -------------------------------------------------------------------------------

    def approve(self, by: str, note: str, proof: ApprovalProof | None, identity: str) -> None:
        self.approved_by, self.approval_proof, self.approval_note = by, proof, note
        self.status.approval, self.awaiting = f"approved by {by}", False
        self.status.approval_request = ""
        self.note("approval", "ok", f"approved by {by} ({identity}){': ' + note if note else ''}")

    def abort(self, by: str, reason: str) -> None:
        self.aborted_by, self.awaiting = by, False
        self.status.approval_request = ""
        if self.status.approval == "pending":
            self.status.approval = f"aborted by {by}"
        self.note("abort", "ok", f"aborted by {by}: {reason}")
