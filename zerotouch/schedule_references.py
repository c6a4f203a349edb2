"""What a policy's schedules name must exist in the policy: templates, backup targets, rotations, checks.

Checked when the policy loads, so `zerotouch policy check` and `schedules apply` refuse a schedule
that would only fail when it first runs.
"""

from __future__ import annotations

from collections.abc import Collection

from zerotouch.backups import BACKUP_ARGUMENTS, targets_named
from zerotouch.rotations import SCHEDULED_ROTATION_WORKFLOW, RotationArgs
from zerotouch.schedules import SCHEDULED_JOB_WORKFLOW, ScheduleDeclaration
from zerotouch.watchdog import WATCHDOG_WORKFLOW, WatchdogArgs


def check_schedule_references(schedules: list[ScheduleDeclaration], *, job_templates: Collection[str],
                              backup_targets: Collection[str], rotations: Collection[str],
                              watchdog_checks: Collection[str]) -> None:
    """Raise ValueError naming the first schedule that is a duplicate or names something undeclared."""
    schedule_names = [s.name for s in schedules]
    duplicates = sorted({n for n in schedule_names if schedule_names.count(n) > 1})
    if duplicates:
        raise ValueError(f"schedule names must be unique: {duplicates}")
    for schedule in schedules:
        wanted = schedule.job_arguments().template if schedule.workflow == SCHEDULED_JOB_WORKFLOW else None
        if wanted is not None and wanted not in job_templates:
            raise ValueError(f"schedule {schedule.name}: template {wanted!r} not in job_templates")
        if schedule.workflow in BACKUP_ARGUMENTS:
            named = targets_named(BACKUP_ARGUMENTS[schedule.workflow].model_validate(schedule.arguments))
            unknown = [t for t in named if t not in backup_targets]
            if unknown:
                raise ValueError(f"schedule {schedule.name}: backup target(s) {unknown} not in backups.targets")
        if schedule.workflow == SCHEDULED_ROTATION_WORKFLOW:
            rotation = RotationArgs.model_validate(schedule.arguments).rotation
            if rotation not in rotations:
                raise ValueError(f"schedule {schedule.name}: rotation {rotation!r} not in rotations.secrets")
        if schedule.workflow == WATCHDOG_WORKFLOW:
            checks = WatchdogArgs.model_validate(schedule.arguments).checks or []
            unknown = [c for c in checks if c not in watchdog_checks]
            if unknown:
                raise ValueError(f"schedule {schedule.name}: check(s) {unknown} not in watchdog.checks")
