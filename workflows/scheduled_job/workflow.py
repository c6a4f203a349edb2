"""ScheduledJobWorkflow: run a policy job template as a Kubernetes Job, once per scheduled time.

A Temporal Schedule starts it with the workflow ID ``zerotouch-scheduled-<name>-<scheduled time>``
and the ``TemporalScheduledStartTime`` search attribute. The Job's name is derived from that
time, so a retried run, a backfill or a catch-up after an outage of the same time finds the Job
already there instead of doing the work twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.schedules import (
        SCHEDULED_JOB_WORKFLOW,
        SCHEDULED_START_TIME_ATTRIBUTE,
        JobWait,
        ScheduledJobInput,
        ScheduledJobRequest,
        ScheduledJobResult,
    )

from workflows.scheduled_job import calls
from workflows.scheduled_job.state import ScheduledRun

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime(SCHEDULED_START_TIME_ATTRIBUTE)


class HasScheduledTime(Protocol):
    @property
    def scheduled_time(self) -> datetime | None: ...


def scheduled_time(params: HasScheduledTime) -> datetime:
    """The time this run stands for: the schedule's (search attribute), else the input's, else the start."""
    from_schedule = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
    if from_schedule is not None:
        return from_schedule
    if params.scheduled_time is not None:
        return params.scheduled_time
    return workflow.info().start_time


@workflow.defn(name=SCHEDULED_JOB_WORKFLOW)
class ScheduledJobWorkflow:
    @workflow.run
    async def run(self, params: ScheduledJobInput) -> ScheduledJobResult:
        """Load the template → create this scheduled time's Job (idempotent) → wait for it."""
        args = params.arguments
        run = ScheduledRun(schedule=params.schedule, scheduled_time=scheduled_time(params))
        policy = await calls.load_policy(params.cluster)
        template = policy.job_templates.get(args.template)
        if template is None:
            raise ApplicationError(f"schedule {params.schedule}: job template {args.template!r} is not in the policy",
                                   type="UnknownJobTemplate", non_retryable=True)
        created = await calls.create_job(ScheduledJobRequest(
            schedule=params.schedule, namespace=args.namespace, template_name=args.template,
            job_template=template.model_dump(mode="json"), scheduled_time=run.scheduled_time,
            idempotency_key=run.key,
        ), params.cluster)
        run.job, run.created = created.job, created.created
        run.outcome = await calls.wait_for_job(JobWait(
            namespace=args.namespace, job=created.job, timeout_seconds=args.timeout.total_seconds(),
            poll_seconds=args.poll.total_seconds(),
        ), params.cluster)
        if run.outcome.failed:
            # Retryable: the schedule's workflow_attempts decide; a new attempt finds the same (failed) Job.
            raise ApplicationError(f"schedule {params.schedule}: {run.outcome.detail}", type="ScheduledJobFailed")
        return run.result()
