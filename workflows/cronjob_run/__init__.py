"""Imported CronJobs: a schedule runs the CronJob's jobTemplate; a handover replaces the CronJob.

Read `workflow.py`: `CronJobRunWorkflow.run` (create this scheduled time's Job from the CronJob's
jobTemplate → wait for it) and `CronJobHandoverWorkflow.run` (run once now → only if that
succeeded, suspend the CronJob → unpause the schedule). `calls.py` names the activities.
"""

from workflows.cronjob_run.workflow import CronJobHandoverWorkflow, CronJobRunWorkflow

__all__ = ["CronJobHandoverWorkflow", "CronJobRunWorkflow"]
