"""Secret rotation: one SecretRotationWorkflow per Secret, started by schedules, the CLI or a leak report."""

from workflows.secret_rotation.scheduled import ScheduledRotationWorkflow
from workflows.secret_rotation.workflow import SecretRotationWorkflow

__all__ = ["ScheduledRotationWorkflow", "SecretRotationWorkflow"]
