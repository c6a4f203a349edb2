"""Data retention: DataRetentionWorkflow erases rows past the data map's retention, on a schedule."""

from workflows.gdpr_retention.workflow import DataRetentionWorkflow

__all__ = ["DataRetentionWorkflow"]
