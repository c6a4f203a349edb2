"""Which backups retention keeps: grandfather-father-son, and two rules no count can override.

Pure, so the plan can be shown (`zerotouch backups prune --dry-run`) before anything is deleted.
A backup is kept when it is the newest of one of the last ``daily`` days, ``weekly`` ISO weeks or
``monthly`` months that have backups; and always when it is under a legal hold, or it is the
newest backup whose last verification succeeded (deleting it would leave no proven restore).
Backups newer than that one are kept too: they are not yet proven, not yet replaceable.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from zerotouch.backups import Retention


@dataclass(frozen=True)
class Candidate:
    id: str
    taken_at: datetime
    verified: bool = False
    on_hold: bool = False


@dataclass
class RetentionPlan:
    keep: dict[str, list[str]] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)


def _newest_per_period(candidates: Sequence[Candidate], periods: int,
                       period_of: Callable[[datetime], Hashable]) -> dict[str, str]:
    """The newest backup of each of the last ``periods`` periods that have any (ID → period label)."""
    chosen: dict[str, str] = {}
    seen: set[Hashable] = set()
    for candidate in sorted(candidates, key=lambda c: c.taken_at, reverse=True):
        period = period_of(candidate.taken_at.astimezone(UTC))
        if period in seen:
            continue
        if len(seen) == periods:
            break
        seen.add(period)
        chosen[candidate.id] = str(period)
    return chosen


def plan(candidates: Sequence[Candidate], rule: Retention) -> RetentionPlan:
    """What to keep (with every reason) and what to delete, oldest first."""
    result = RetentionPlan()

    def keep(backup_id: str, reason: str) -> None:
        result.keep.setdefault(backup_id, []).append(reason)

    for backup_id, day in _newest_per_period(candidates, rule.daily, lambda t: t.date().isoformat()).items():
        keep(backup_id, f"daily {day}")
    for backup_id, week in _newest_per_period(
            candidates, rule.weekly, lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])).items():
        keep(backup_id, f"weekly {week}")
    for backup_id, month in _newest_per_period(candidates, rule.monthly, lambda t: t.strftime("%Y-%m")).items():
        keep(backup_id, f"monthly {month}")
    for candidate in candidates:
        if candidate.on_hold:
            keep(candidate.id, "legal hold")
    verified = [c for c in candidates if c.verified]
    if verified:
        newest_verified = max(verified, key=lambda c: c.taken_at)
        keep(newest_verified.id, "newest verified backup")
        for candidate in candidates:
            if candidate.taken_at > newest_verified.taken_at:
                keep(candidate.id, "newer than the newest verified backup (not yet proven)")
    result.delete = [c.id for c in sorted(candidates, key=lambda c: c.taken_at) if c.id not in result.keep]
    return result
