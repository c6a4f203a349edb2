"""BackupRetentionWorkflow: prune each target's backups by its grandfather-father-son rules.

Never the newest verified backup, never one under a legal hold (`zerotouch.retention`).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.backup_models import RetentionRequest, RetentionResult
    from zerotouch.backups import RETENTION_WORKFLOW, RetentionInput

from workflows.backup import calls
from workflows.backup.targets import target_of


@workflow.defn(name=RETENTION_WORKFLOW)
class BackupRetentionWorkflow:
    @workflow.run
    async def run(self, params: RetentionInput) -> dict[str, RetentionResult]:
        """For each target: plan from the repository → delete what no rule keeps."""
        policy = await calls.load_policy(params.cluster)
        names = params.arguments.targets or [t.name for t in policy.backups.targets]
        results: dict[str, RetentionResult] = {}
        for name in names:
            target = target_of(policy, name)
            results[name] = await calls.apply_retention(RetentionRequest(
                target=target, repository=policy.backups.repository, now=workflow.now(),
                dry_run=params.arguments.dry_run), params.cluster)
        return results
