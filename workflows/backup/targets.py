"""Finding a backup target in the policy, as a workflow error when it is not there."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.backups import BackupTarget
    from zerotouch.policy import Policy


def target_of(policy: Policy, name: str) -> BackupTarget:
    try:
        return policy.backups.target(name)
    except KeyError as error:
        # Retrying cannot add a target to the policy: fail this run, say which.
        raise ApplicationError(str(error.args[0]), type="UnknownBackupTarget", non_retryable=True) from None
