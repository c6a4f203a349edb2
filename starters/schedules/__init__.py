"""Temporal Schedules from the policy's declarations: reconcile, read and steer, render, measure.

`reconcile` turns declarations into Schedules and makes the server match them (`plan`, `apply`);
`control` reads managed schedules back and steers them (pause, trigger, backfill); `render` is
the CLI's text; `metrics` exports per-schedule gauges. The names below are the package's API.
"""

from starters.schedules.control import (
    ScheduleNotManaged,
    ScheduleRow,
    backfill,
    managed_handle,
    pause,
    rows,
    show,
    trigger,
    unpause,
)
from starters.schedules.metrics import ScheduleMetrics
from starters.schedules.reconcile import (
    Change,
    apply,
    apply_and_summarize,
    build_schedule,
    describe,
    described_view,
    managed_ids,
    plan,
    view,
    workflow_input,
)
from starters.schedules.render import render_changes, render_row, render_rows

__all__ = [
    "Change", "ScheduleMetrics", "ScheduleNotManaged", "ScheduleRow", "apply", "apply_and_summarize", "backfill",
    "build_schedule", "describe", "described_view", "managed_handle", "managed_ids", "pause", "plan", "render_changes",
    "render_row", "render_rows", "rows", "show", "trigger", "unpause", "view", "workflow_input",
]
