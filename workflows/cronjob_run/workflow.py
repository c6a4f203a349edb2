"""CronJobRunWorkflow runs an imported CronJob's jobTemplate once per scheduled time;
CronJobHandoverWorkflow moves a CronJob's work onto its schedule.

The run's Job is named after its scheduled time as the CronJob controller would name it, so a
retried run, a backfill or a catch-up of the same time finds it instead of running it twice.
The handover runs the schedule's workflow once now, as a child, and only if that run succeeded
suspends the CronJob and then unpauses the schedule (created paused): the CronJob and the
schedule are never both active. A failed first run leaves the CronJob running and the schedule
paused, and says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from zerotouch.cronjobs import (
        CRONJOB_HANDOVER_WORKFLOW,
        CronJobHandoverInput,
        CronJobHandoverResult,
        CronJobPatch,
        CronJobRunInput,
        CronJobRunRequest,
        ScheduleUnpause,
        utc_stamp,
    )
    from zerotouch.schedules import (
        CRONJOB_RUN_WORKFLOW,
        SCHEDULED_START_TIME_ATTRIBUTE,
        JobWait,
        ScheduledJobResult,
        scheduled_job_key,
        scheduled_workflow_id,
    )

from workflows.cronjob_run import calls

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime(SCHEDULED_START_TIME_ATTRIBUTE)


def scheduled_time(params: CronJobRunInput) -> datetime:
    """The time this run stands for: the schedule's (search attribute), else the input's, else the start."""
    from_schedule = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
    if from_schedule is not None:
        return from_schedule
    return params.scheduled_time if params.scheduled_time is not None else workflow.info().start_time


@workflow.defn(name=CRONJOB_RUN_WORKFLOW)
class CronJobRunWorkflow:
    @workflow.run
    async def run(self, params: CronJobRunInput) -> ScheduledJobResult:
        """Create this scheduled time's Job from the CronJob's jobTemplate (idempotent) → wait for it."""
        args, when = params.arguments, scheduled_time(params)
        created = await calls.create_job(CronJobRunRequest(
            schedule=params.schedule, namespace=args.namespace, cronjob=args.cronjob, scheduled_time=when,
            idempotency_key=scheduled_job_key(params.schedule, when),
        ), params.cluster)
        outcome = await calls.wait_for_job(JobWait(
            namespace=args.namespace, job=created.job, timeout_seconds=args.timeout.total_seconds(),
            poll_seconds=args.poll.total_seconds(),
        ), params.cluster)
        if outcome.failed:  # retryable: the schedule's workflow_attempts decide; a retry finds the same Job
            raise ApplicationError(f"schedule {params.schedule}: {outcome.detail}", type="ScheduledJobFailed")
        return ScheduledJobResult(schedule=params.schedule, scheduled_time=when, job=created.job,
                                  created=created.created, succeeded=outcome.succeeded, detail=outcome.detail)


@workflow.defn(name=CRONJOB_HANDOVER_WORKFLOW)
class CronJobHandoverWorkflow:
    @workflow.run
    async def run(self, params: CronJobHandoverInput) -> CronJobHandoverResult:
        """First run now → (succeeded) suspend the CronJob → unpause the schedule."""
        args = params.arguments
        when = workflow.now().replace(microsecond=0)
        first_run = f"{scheduled_workflow_id(params.schedule, params.cluster)}-{utc_stamp(when)}"
        result = CronJobHandoverResult(schedule=params.schedule, namespace=args.namespace, cronjob=args.cronjob,
                                       handed_over=False, first_run=first_run)
        try:
            run: ScheduledJobResult = await workflow.execute_child_workflow(
                CRONJOB_RUN_WORKFLOW,
                CronJobRunInput(schedule=params.schedule, cluster=params.cluster, arguments=args,
                                scheduled_time=when),
                id=first_run, result_type=ScheduledJobResult,
                execution_timeout=args.timeout + timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_attempts=params.first_run_attempts,
                                         initial_interval=timedelta(seconds=1)),
            )
        except ChildWorkflowError as error:
            cause = error.cause.message if isinstance(error.cause, ApplicationError) else str(error.cause or error)
            result.detail = (f"first run failed ({cause}): CronJob {args.namespace}/{args.cronjob} left active, "
                             f"schedule {params.schedule} left paused")
            return result
        result.job = run.job
        suspended = await calls.suspend_cronjob(CronJobPatch(namespace=args.namespace, cronjob=args.cronjob,
                                                             schedule_id=params.schedule_id), params.cluster)
        await calls.unpause_schedule(ScheduleUnpause(
            schedule_id=params.schedule_id,
            note=f"handed over from CronJob {args.namespace}/{args.cronjob} after first run {run.job} succeeded",
        ), params.cluster)
        result.handed_over = True
        result.detail = f"first run {run.job} succeeded; {suspended}; schedule {params.schedule} unpaused"
        return result
