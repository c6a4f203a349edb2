"""A rotation's run as the ledger keeps it: references, versions, who decided, what happened."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.rotation_models import RotationRecord

from workflows.secret_rotation.state import RotationRun


def record_of(run: RotationRun) -> RotationRecord:
    info = workflow.info()
    status = run.status
    return RotationRecord(
        rotation=status.rotation, secret=status.secret, kind=status.kind, workflow_id=info.workflow_id,
        run_id=info.run_id, token=status.token, outcome=run.outcome,
        requested_by=status.requested_by, approved_by=status.approved_by, reason=run.params.reason,
        started_at=run.started_at, finished_at=workflow.now(), consumers=status.consumers,
        steps=[f"{e.at.isoformat(timespec='seconds')} {e.kind} [{e.actor}] {e.message}" for e in run.log],
    )
