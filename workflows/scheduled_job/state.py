"""What one scheduled run knows: which schedule, which scheduled time, which Job, how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.schedules import JobOutcome, ScheduledJobResult, scheduled_job_key


@dataclass
class ScheduledRun:
    schedule: str
    scheduled_time: datetime
    job: str = ""
    created: bool = False
    outcome: JobOutcome | None = None

    @property
    def key(self) -> str:
        """One key per schedule and scheduled time: the Job's idempotency key."""
        return scheduled_job_key(self.schedule, self.scheduled_time)

    def result(self) -> ScheduledJobResult:
        outcome = self.outcome
        return ScheduledJobResult(schedule=self.schedule, scheduled_time=self.scheduled_time, job=self.job,
                                  created=self.created, succeeded=bool(outcome and outcome.succeeded),
                                  detail=outcome.detail if outcome else "")
