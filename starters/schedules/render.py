"""Schedules and changes as people read them (the CLI's output without --json)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from starters.schedules.control import ScheduleRow
from starters.schedules.reconcile import Change
from zerotouch.durations import format_duration

# --- rendering --------------------------------------------------------------------------


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    delta = value - now
    rel = f"in {format_duration(delta)}" if delta >= timedelta(0) else f"{format_duration(-delta)} ago"
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z ({rel})"


def render_rows(found: Sequence[ScheduleRow], now: datetime | None = None) -> str:
    if not found:
        return "no schedules (declare them in the policy's `schedules:` and run `zerotouch schedules apply`)"
    now = now or datetime.now(UTC)
    header = ("NAME", "STATE", "SPEC", "NEXT RUN", "LAST RUN", "RUNS", "SKIPPED", "MISSED")
    table = [header] + [
        (r.name, "paused" if r.paused else "active", r.spec, _when(r.next_run, now), _when(r.last_run, now),
         str(r.runs), str(r.skipped_overlap), str(r.missed_catchup))
        for r in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def render_row(row: ScheduleRow, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    lines = [
        f"schedule   {row.name}   ({row.schedule_id})",
        f"workflow   {row.workflow}",
        f"spec       {row.spec}",
        f"state      {'paused' if row.paused else 'active'}" + (f" — {row.note}" if row.note else ""),
        f"overlap    {row.overlap}",
        f"next run   {_when(row.next_run, now)}",
        f"last run   {_when(row.last_run, now)}",
        f"runs       {row.runs} (skipped by overlap {row.skipped_overlap}, "
        f"missed outside the catch-up window {row.missed_catchup})",
    ]
    if row.running:
        lines.append(f"running    {', '.join(row.running)}")
    for recent in row.recent:
        lines.append(f"  ran {recent['scheduled_at']} → {recent['workflow_id']}")
    return "\n".join(lines)


def render_changes(changes: Sequence[Change]) -> str:
    if not changes:
        return "no changes: the server matches the declarations"
    lines = []
    for change in changes:
        sign = {"create": "+", "update": "~", "delete": "-", "kept": "="}[change.kind]
        lines.append(f"{sign} {change.kind} {change.name} ({change.schedule_id})")
        if change.kind == "kept":
            lines.append("    imported from a CronJob and not in the policy: add its declaration, or give the "
                         "CronJob back with `zerotouch schedules import-cronjobs --undo`")
        for name, (server, declared) in change.fields.items():
            lines.append(f"    {name}: {server!r} → {declared!r}")
        if change.pause:
            lines.append("    paused: False → True")
    return "\n".join(lines)
