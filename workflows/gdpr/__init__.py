"""Data-subject requests: one DataSubjectRequestWorkflow per request (access or erasure)."""

from workflows.gdpr.workflow import DataSubjectRequestWorkflow

__all__ = ["DataSubjectRequestWorkflow"]
