"""BackupVerificationWorkflow: prove a backup by restoring it, and make a failure an incident.

Picks the requested backup, else the newest never verified, else the newest; the backup worker
restores it into a scratch place (never the source), runs the checks and records the report
next to the backup; the report goes to the ledger as evidence. A restore that fails, a check that
fails, or no backup at all opens a `BackupVerificationFailed` incident carrying the evidence; it
never reports success. The next successful verification resolves that alert.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from zerotouch.backup_models import (
        BackupCatalog,
        BackupEvidence,
        BackupSummary,
        CheckResult,
        ListRequest,
        VerificationReport,
        VerificationRequest,
    )
    from zerotouch.backups import FAILURE_ALERT, VERIFICATION_WORKFLOW, VerifyInput

from workflows.backup import calls
from workflows.backup.failures import clear_failure, report_failure
from workflows.backup.targets import target_of


def choose(catalog: BackupCatalog, backup_id: str) -> BackupSummary | None:
    if backup_id:
        return next((b for b in catalog.backups if b.id == backup_id), None)
    return catalog.newest_unverified() or catalog.newest()


def evidence_text(report: VerificationReport) -> str:
    lines = [f"backup {report.backup_id}, verification {report.id}, recovery target {report.recovery_target or '-'}"]
    lines += [f"{'ok' if c.ok else 'FAILED'} {c.name}: {c.output[:300]}" for c in report.checks]
    return "\n".join(lines)


@workflow.defn(name=VERIFICATION_WORKFLOW)
class BackupVerificationWorkflow:
    def __init__(self) -> None:
        self._report: VerificationReport | None = None

    @workflow.query(name="report")
    def report(self) -> VerificationReport | None:
        return self._report

    @workflow.run
    async def run(self, params: VerifyInput) -> VerificationReport:
        """Choose the backup → test restore and checks → evidence to the ledger → incident if not proven."""
        args, cluster = params.arguments, params.cluster
        policy = await calls.load_policy(cluster)
        target = target_of(policy, args.target)
        catalog = await calls.backup_catalog(ListRequest(target=target.name, repository=policy.backups.repository),
                                             cluster)
        chosen = choose(catalog, args.backup_id)
        if chosen is None:
            missing = f"no backup {args.backup_id!r}" if args.backup_id else "no backup at all"
            await report_failure(policy, target, alertname=FAILURE_ALERT, cluster=cluster,
                                 summary=f"nothing to verify for {target.name}: {missing} in the repository",
                                 evidence=f"{len(catalog.backups)} backup(s) listed")
            raise ApplicationError(f"{target.name}: nothing to verify, {missing}", type="NoBackupToVerify",
                                   non_retryable=True)
        started = workflow.now()
        verification_id = f"{chosen.id}-v{started.strftime('%Y%m%dT%H%M%SZ')}"
        try:
            report = await calls.verify_backup(VerificationRequest(
                target=target, backup_id=chosen.id, verification_id=verification_id,
                repository=policy.backups.repository, recovery_target_time=args.recovery_target_time), cluster)
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                raise  # the workflow was cancelled: that is not a verdict on the backup
            # The restore never finished in any attempt: that is a failed verification, with the reason.
            report = VerificationReport(
                id=verification_id, backup_id=chosen.id, target=target.name, engine=target.engine,
                started_at=started, finished_at=workflow.now(), ok=False,
                checks=[CheckResult(name="restore ran", ok=False, output=str(error.cause or error))])
        self._report = report
        await calls.append_evidence(BackupEvidence(report=report, workflow_id=workflow.info().workflow_id,
                                                   run_id=workflow.info().run_id), cluster)
        if not report.ok:
            incident = await report_failure(
                policy, target, alertname=FAILURE_ALERT, cluster=cluster,
                summary=f"backup {chosen.id} of {target.name} is not restorable: {report.summary()}",
                evidence=evidence_text(report), extra={"backup_id": chosen.id, "verification_id": report.id})
            raise ApplicationError(f"verification {report.id} failed ({report.summary()}); incident {incident}",
                                   type="BackupVerificationFailed", non_retryable=True)
        await clear_failure(policy, target, alertname=FAILURE_ALERT, cluster=cluster,
                            summary=f"backup {chosen.id} of {target.name} verified by {report.id}")
        return report
