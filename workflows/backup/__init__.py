"""The backup operation: take backups, prove them by test restores, prune them.

Read `workflow.py` (`BackupWorkflow.run`: the backup of one scheduled time), `verification.py`
(`BackupVerificationWorkflow.run`: a test restore, its evidence, an incident when it fails) and
`retention.py`; `calls.py` names the activities with their timeouts and retries; `failures.py`
turns a failure into an incident through the IncidentWorkflow path.
"""

from workflows.backup.retention import BackupRetentionWorkflow
from workflows.backup.verification import BackupVerificationWorkflow
from workflows.backup.workflow import BackupWorkflow

__all__ = ["BackupRetentionWorkflow", "BackupVerificationWorkflow", "BackupWorkflow"]
