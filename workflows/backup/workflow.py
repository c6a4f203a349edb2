"""BackupWorkflow: take one backup of one target, once per scheduled time.

A Temporal Schedule (policy `schedules:`) or `zerotouch backups run` starts it. The backup's ID is
derived from the scheduled time, so a retried run, a backfill or a catch-up of a time that already
ran finds the published backup instead of taking a second one. A backup that cannot be taken
opens a `BackupFailed` incident with the error; the next good backup resolves that alert.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from zerotouch.backup_alerts import BACKUP_FAILED_ALERT
    from zerotouch.backup_models import BackupRequest, BackupSummary, backup_id_for
    from zerotouch.backups import BACKUP_WORKFLOW, VERIFICATION_WORKFLOW, BackupInput, VerifyArgs, VerifyInput

from workflows.backup import calls
from workflows.backup.failures import clear_failure, report_failure
from workflows.backup.targets import target_of
from workflows.scheduled_job.workflow import scheduled_time


@workflow.defn(name=BACKUP_WORKFLOW)
class BackupWorkflow:
    @workflow.run
    async def run(self, params: BackupInput) -> BackupSummary:
        """Load the target → take the backup of this scheduled time (idempotent) → verify it if asked."""
        policy = await calls.load_policy(params.cluster)
        target = target_of(policy, params.arguments.target)
        at = scheduled_time(params)
        backup_id = backup_id_for(target.name, at)
        try:
            summary = await calls.take_backup(
                BackupRequest(target=target, backup_id=backup_id, repository=policy.backups.repository),
                params.cluster)
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                raise  # the workflow was cancelled: that is not a verdict on the backup
            cause = str(error.cause or error)
            await report_failure(policy, target, alertname=BACKUP_FAILED_ALERT, cluster=params.cluster,
                                 summary=f"backup {backup_id} of {target.name} could not be taken",
                                 evidence=cause, extra={"backup_id": backup_id})
            raise ApplicationError(f"backup {backup_id} of {target.name} failed: {cause}", type="BackupFailed",
                                   non_retryable=True) from None
        await clear_failure(policy, target, alertname=BACKUP_FAILED_ALERT, cluster=params.cluster,
                            summary=f"backup {summary.id} of {target.name} taken")
        if params.arguments.verify:
            try:
                await workflow.execute_child_workflow(
                    VERIFICATION_WORKFLOW,
                    VerifyInput(cluster=params.cluster, scheduled_time=at,
                                arguments=VerifyArgs(target=target.name, backup_id=summary.id)),
                    id=f"zerotouch-verify-{summary.id}", task_queue=workflow.info().task_queue,
                )
            except ChildWorkflowError:
                # The backup itself is taken; the failed verification opened its own incident.
                workflow.logger.warning("verification of %s failed; see its incident", summary.id)
        return summary
