"""Imported CronJobs: what CronJobRunWorkflow, the handover and their activities exchange.

`zerotouch schedules import-cronjobs` turns each CronJob into a schedule declaration whose
workflow, CronJobRunWorkflow, reads the CronJob at run time and runs its ``jobTemplate`` as a
Job named like the CronJob controller names it (``<cronjob>-<unix minutes of the scheduled
time>``), so one scheduled time has one Job whoever creates it: the schedule, a catch-up, a
retry, or the CronJob itself during the handover. The suspended CronJob stays the single
source of the pod template.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from zerotouch.schedules import CronJobRunArgs

IMPORTED_AS_ANNOTATION: Final = "zerotouch.io/imported-as-schedule"
"""On an imported CronJob: the schedule ID that replaces it (`--undo` finds CronJobs by it)."""
SUSPENDED_BEFORE_ANNOTATION: Final = "zerotouch.io/suspended-before-import"
"""On an imported CronJob: "true" if it was suspended before the import (`--undo` leaves it so)."""
HANDED_OVER_ANNOTATION: Final = "zerotouch.io/handed-over-at"
"""On an imported CronJob: when the handover suspended it (after the schedule's first run succeeded)."""
CRONJOB_SCHEDULED_TIMESTAMP: Final = "batch.kubernetes.io/cronjob-scheduled-timestamp"
CRONJOB_HANDOVER_WORKFLOW: Final = "CronJobHandoverWorkflow"
HANDOVER_WORKFLOW_ID_PREFIX: Final = "zerotouch-cronjob-handover-"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def cronjob_job_name(cronjob: str, scheduled_time: datetime) -> str:
    """The Job of one scheduled time, named as the Kubernetes CronJob controller names it."""
    return f"{cronjob}-{int(scheduled_time.timestamp()) // 60}"


def handover_workflow_id(namespace: str, cronjob: str, cluster: str = "") -> str:
    return f"{HANDOVER_WORKFLOW_ID_PREFIX}{cluster + '-' if cluster else ''}{namespace}-{cronjob}"


def utc_stamp(when: datetime) -> str:
    """A scheduled time as Temporal suffixes a scheduled workflow's ID with it."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CronJobRunInput(_Model):
    """The input of CronJobRunWorkflow, as a schedule's action (or the handover) carries it."""

    schedule: str = Field(description="the declaration's name")
    cluster: str = ""
    arguments: CronJobRunArgs
    scheduled_time: datetime | None = Field(
        default=None, description="for runs not started by a schedule (the handover's first run)")


class CronJobRunRequest(_Model):
    """Create the Job of one scheduled time from the CronJob's jobTemplate (idempotent by name)."""

    schedule: str
    namespace: str
    cronjob: str
    scheduled_time: datetime
    idempotency_key: str


class CronJobPatch(_Model):
    namespace: str
    cronjob: str
    schedule_id: str = Field(description="the schedule that replaces it; the CronJob must name it")


class ScheduleUnpause(_Model):
    schedule_id: str
    note: str


class CronJobHandoverInput(_Model):
    """Run the imported schedule once now; only if that succeeded, suspend the CronJob and unpause the schedule."""

    schedule: str
    schedule_id: str
    cluster: str = ""
    arguments: CronJobRunArgs
    first_run_attempts: int = Field(default=1, ge=1, le=10)


class CronJobHandoverResult(_Model):
    schedule: str
    namespace: str
    cronjob: str
    handed_over: bool = Field(description="True: the first run succeeded, the CronJob is suspended, "
                                          "the schedule unpaused")
    first_run: str = Field(description="the first run's workflow ID")
    job: str = ""
    detail: str = ""
