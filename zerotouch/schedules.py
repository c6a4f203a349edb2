"""Schedule declarations: what runs when, as Temporal Schedules that `zerotouch schedules apply` reconciles.

Declared in the policy's ``schedules:`` section (one file holds what zerotouch may do and when
it does it on its own; `zerotouch policy check` validates both). Each declaration becomes one
Temporal Schedule whose ID is derived from its name (`schedule_id`), so applying twice changes
nothing. Cron expressions are compiled here into Temporal calendar specs (`cron_calendars`), so
what is sent is exactly what the server stores and describes back, and drift shows field by field.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from zerotouch.backups import (
    BACKUP_ARGUMENTS,
    BACKUP_WORKFLOW,
    RETENTION_WORKFLOW,
    VERIFICATION_WORKFLOW,
)
from zerotouch.durations import Duration, format_duration
from zerotouch.gdpr_retention import DATA_RETENTION_WORKFLOW, DataRetentionArgs
from zerotouch.rotations import SCHEDULED_ROTATION_WORKFLOW, RotationArgs
from zerotouch.watchdog import WATCHDOG_WORKFLOW, WatchdogArgs

log = logging.getLogger("zerotouch.schedules")

SCHEDULED_JOB_WORKFLOW: Final = "ScheduledJobWorkflow"
CRONJOB_RUN_WORKFLOW: Final = "CronJobRunWorkflow"  # an imported CronJob's template (zerotouch/cronjobs.py)
SCHEDULED_WORKFLOWS: Final = (SCHEDULED_JOB_WORKFLOW, CRONJOB_RUN_WORKFLOW, BACKUP_WORKFLOW, VERIFICATION_WORKFLOW,
                               RETENTION_WORKFLOW, SCHEDULED_ROTATION_WORKFLOW, DATA_RETENTION_WORKFLOW,
                               WATCHDOG_WORKFLOW)
"""The workflows a schedule may start (each registered on the workflows queue)."""

ScheduledWorkflow = Literal["ScheduledJobWorkflow", "CronJobRunWorkflow", "BackupWorkflow",
                            "BackupVerificationWorkflow", "BackupRetentionWorkflow", "ScheduledRotationWorkflow",
                            "DataRetentionWorkflow", "WatchdogWorkflow"]
Overlap = Literal["SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER", "TERMINATE_OTHER", "ALLOW_ALL"]

SCHEDULE_ID_PREFIX: Final = "zerotouch-schedule-"
SCHEDULED_WORKFLOW_ID_PREFIX: Final = "zerotouch-scheduled-"
MEMO_KEY: Final = "zerotouch"
"""Memo of every schedule zerotouch manages: ``{"managed": true, "cluster": ..., "name": ...}``.
`apply` deletes only schedules carrying it for its own cluster scope."""
SCHEDULED_START_TIME_ATTRIBUTE: Final = "TemporalScheduledStartTime"
MIN_CATCHUP_WINDOW: Final = timedelta(seconds=10)  # Temporal's minimum


def schedule_id(name: str, cluster: str = "") -> str:
    """The Temporal Schedule ID of a declaration: the same name always yields the same ID."""
    return f"{SCHEDULE_ID_PREFIX}{cluster + '-' if cluster else ''}{name}"


def scheduled_workflow_id(name: str, cluster: str = "") -> str:
    """The workflow ID a schedule starts; Temporal appends ``-<scheduled time>`` to each run's."""
    return f"{SCHEDULED_WORKFLOW_ID_PREFIX}{cluster + '-' if cluster else ''}{name}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ScheduledJobArgs(_Model):
    """The arguments of ScheduledJobWorkflow: which policy job template runs, and where."""

    template: str = Field(description="a name in the policy's job_templates")
    namespace: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    timeout: Duration = Field(default=timedelta(minutes=30), description="give up waiting for the Job after this")
    poll: Duration = Field(default=timedelta(seconds=2), description="how often the Job's status is read")


class CronJobRunArgs(_Model):
    """The arguments of CronJobRunWorkflow: which CronJob's jobTemplate runs (read at run time)."""

    namespace: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    cronjob: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]{0,50}[a-z0-9])?$", description="the CronJob's name")
    timeout: Duration = Field(default=timedelta(minutes=30), description="give up waiting for the Job after this")
    poll: Duration = Field(default=timedelta(seconds=2), description="how often the Job's status is read")


ARGUMENTS_OF_WORKFLOW: Final[dict[str, type[BaseModel]]] = {SCHEDULED_JOB_WORKFLOW: ScheduledJobArgs,
                                                            CRONJOB_RUN_WORKFLOW: CronJobRunArgs, **BACKUP_ARGUMENTS,
                                                            SCHEDULED_ROTATION_WORKFLOW: RotationArgs,
                                                            DATA_RETENTION_WORKFLOW: DataRetentionArgs,
                                                            WATCHDOG_WORKFLOW: WatchdogArgs}

# --- cron → calendar ---------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_Field = tuple[str, int, int, dict[str, int]]  # name, low, high, names
_FIELDS: Final[tuple[_Field, ...]] = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day_of_month", 1, 31, {}),
                  ("month", 1, 12, _MONTHS), ("day_of_week", 0, 6, _DAYS))
_MACROS: Final = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                  "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}

Range = tuple[int, int, int]  # start, end, step: Temporal's ScheduleRange, normalized
Calendar = dict[str, list[Range]]


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    value = names.get(text.lower()) if text.isalpha() else (int(text) if text.isdigit() else None)
    if field == "day_of_week" and value == 7:
        value = 0  # cron's second Sunday
    if value is None or not low <= value <= high:
        raise ValueError(f"{field} value {text!r} is not in {low}-{high}")
    return value


def cron_calendar(expression: str) -> Calendar:
    """One 5-field cron expression (``m h dom mon dow``, or @daily etc.) as calendar ranges.

    Temporal requires every field of a calendar to match (cron ORs day-of-month and
    day-of-week when both are restricted), so restricting both is refused rather than
    silently meaning something else.
    """
    text = _MACROS.get(expression.strip().lower(), expression.strip())
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"cron {expression!r}: expected 5 fields (minute hour day-of-month month day-of-week)")
    calendar: Calendar = {"second": [(0, 0, 1)]}
    for part, (field, low, high, names) in zip(parts, _FIELDS, strict=True):
        ranges: list[Range] = []
        for item in part.split(","):
            body, _, step_text = item.partition("/")
            if step_text and not step_text.isdigit():
                raise ValueError(f"cron {expression!r}: bad step {step_text!r} in {field}")
            step = int(step_text) if step_text else 1
            if step < 1:
                raise ValueError(f"cron {expression!r}: step must be at least 1 in {field}")
            if body == "*":
                start, end = low, high
            elif "-" in body:
                first, _, last = body.partition("-")
                start, end = _value(first, low, high, names, field), _value(last, low, high, names, field)
                if end < start:
                    raise ValueError(f"cron {expression!r}: range {body!r} runs backwards in {field}")
            else:
                start = _value(body, low, high, names, field)
                end = high if step_text else start
            ranges.append((start, end, step))
        calendar[field] = ranges
    if parts[2] != "*" and parts[4] != "*":
        raise ValueError(f"cron {expression!r}: restrict day-of-month or day-of-week, not both "
                         "(Temporal would require both to match; cron would accept either)")
    return calendar


# --- the declaration ---------------------------------------------------------------------


class ScheduleDeclaration(_Model):
    """One schedule: which workflow runs with which arguments, when, and what happens on overlap."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="unique; derives the schedule ID")
    workflow: ScheduledWorkflow = Field(description=f"one of {', '.join(SCHEDULED_WORKFLOWS)}")
    arguments: dict[str, Any] = Field(default_factory=dict, description="the workflow's arguments")
    cron: list[str] = Field(default_factory=list, description="5-field cron expressions (or @daily, @hourly, ...)")
    interval: Duration | None = Field(default=None, description="run every this long (with `offset`)")
    offset: Duration | None = Field(default=None, description="shifts the interval's runs from the epoch")
    time_zone: str = Field(default="UTC", description="IANA time zone the cron expressions are read in")
    jitter: Duration = Field(default=timedelta(0), description="each run starts up to this much later, at random")
    overlap: Overlap = Field(default="SKIP", description="what a run due while the previous one runs does")
    catchup_window: Duration = Field(default=timedelta(hours=1),
                                     description="runs missed for longer (server down) are skipped; min 10s")
    pause_on_failure: bool = Field(default=False, description="pause the schedule once a run fails for good")
    workflow_attempts: int = Field(default=1, ge=1, le=10, description="attempts of each run before it fails")
    execution_timeout: Duration = Field(default=timedelta(hours=1), description="a run longer than this fails")
    notes: str = Field(default="", description="for people: why it exists, who owns it")
    paused: bool = Field(default=False, description="create (and keep) it paused")

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @field_validator("cron", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("cron")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for expression in value:
            cron_calendar(expression)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleDeclaration:
        if not self.cron and self.interval is None:
            raise ValueError("give `cron` or `interval` (or both)")
        if self.interval is not None and self.interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        if self.offset is not None and (self.interval is None or self.offset >= self.interval):
            raise ValueError("offset needs an interval and must be shorter than it")
        if self.catchup_window < MIN_CATCHUP_WINDOW:
            warning = (f"catchup_window {format_duration(self.catchup_window)} is below Temporal's minimum; "
                       f"using {format_duration(MIN_CATCHUP_WINDOW)}")
            log.warning("schedule %s: %s", self.name, warning)
            self.catchup_window = MIN_CATCHUP_WINDOW
            self._warnings.append(warning)
        model = ARGUMENTS_OF_WORKFLOW[self.workflow]
        model.model_validate(self.arguments)  # its errors name the argument
        return self

    @property
    def warnings(self) -> list[str]:
        """What was adjusted while reading it (a catch-up window clamped to 10 s)."""
        return list(self._warnings)

    def job_arguments(self) -> ScheduledJobArgs:
        return ScheduledJobArgs.model_validate(self.arguments)


# --- what the scheduled job workflow and its activities exchange ------------------------


class ScheduledJobInput(_Model):
    """The input of ScheduledJobWorkflow, as a schedule's action carries it."""

    schedule: str = Field(description="the declaration's name")
    cluster: str = ""
    arguments: ScheduledJobArgs
    scheduled_time: datetime | None = Field(
        default=None, description="only for runs started by hand; a schedule's runs read TemporalScheduledStartTime")


class ScheduledJobRequest(_Model):
    """Create the Job of one scheduled time (idempotent: its name is derived from that time)."""

    schedule: str
    namespace: str
    template_name: str
    job_template: dict[str, Any]
    scheduled_time: datetime
    idempotency_key: str


class JobWait(_Model):
    namespace: str
    job: str
    timeout_seconds: float = Field(gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)


class JobOutcome(_Model):
    job: str
    created: bool = Field(default=False, description="False: a Job of this scheduled time already existed")
    succeeded: bool = False
    failed: bool = False
    detail: str = ""


class ScheduledJobResult(_Model):
    schedule: str
    scheduled_time: datetime
    job: str
    created: bool
    succeeded: bool
    detail: str


def scheduled_job_key(schedule: str, scheduled_time: datetime) -> str:
    """The idempotency key of one scheduled time of one schedule."""
    utc = scheduled_time.astimezone(UTC) if scheduled_time.tzinfo else scheduled_time
    return f"{schedule}@{utc.strftime('%Y%m%dT%H%M%SZ')}"
