"""DatabaseFailoverWorkflow: fence, promote within the lag bound, repoint, verify, rejoin."""

from workflows.db_failover.workflow import DatabaseFailoverWorkflow

__all__ = ["DatabaseFailoverWorkflow"]
