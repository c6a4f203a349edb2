"""The scheduled job operation: a Temporal Schedule starts one ScheduledJobWorkflow per scheduled time.

Read `workflow.py` (`ScheduledJobWorkflow.run`: load the policy's job template → create the Job of
this scheduled time → wait for it); `calls.py` names the activities with their timeouts and retries;
`state.py` holds what one run knows.
"""

from workflows.scheduled_job.workflow import ScheduledJobWorkflow

__all__ = ["ScheduledJobWorkflow"]
