"""Grandfather-father-son retention, and the two rules no count overrides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from zerotouch.backups import Retention
from zerotouch.retention import Candidate, plan

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # a Thursday


def daily(days: int, **marks: dict[str, bool]) -> list[Candidate]:
    backups = []
    for day in range(days):
        backup_id = f"b{day:03d}"
        backups.append(Candidate(id=backup_id, taken_at=START + timedelta(days=day), **marks.get(backup_id, {})))
    return backups


def _newest_per(backups: list[Candidate], key: Callable[[datetime], object], count: int) -> set[str]:
    groups: dict[object, Candidate] = {}
    for backup in backups:
        period = key(backup.taken_at)
        if period not in groups or backup.taken_at > groups[period].taken_at:
            groups[period] = backup
    newest_periods = sorted(groups, key=lambda period: groups[period].taken_at)[-count:]
    return {groups[period].id for period in newest_periods}


def test_keeps_the_newest_of_each_day_week_and_month() -> None:
    backups = daily(100)  # Jan 1 .. Apr 10, 2026
    decided = plan(backups, Retention(daily=7, weekly=4, monthly=3))
    days = _newest_per(backups, lambda t: t.date(), 7)
    weeks = _newest_per(backups, lambda t: t.isocalendar()[:2], 4)
    months = _newest_per(backups, lambda t: (t.year, t.month), 3)
    assert days == {f"b{day:03d}" for day in range(93, 100)}
    assert months == {"b099", "b089", "b058"}  # Apr 10, Mar 31, Feb 28
    assert set(decided.keep) == days | weeks | months
    assert weeks == {"b099", "b094", "b087", "b080"}  # this week's newest, then three Sundays
    for backup_id in weeks - {"b099"}:
        assert (START + timedelta(days=int(backup_id[1:]))).isoweekday() == 7
        assert any(reason.startswith("weekly") for reason in decided.keep[backup_id])
    assert set(decided.delete) == {b.id for b in backups} - set(decided.keep)
    assert decided.delete == sorted(decided.delete)  # oldest first


def test_never_deletes_the_newest_verified_backup_even_when_old() -> None:
    backups = daily(30, b002={"verified": True})
    decided = plan(backups, Retention(daily=3, weekly=0, monthly=0))
    assert "b002" not in decided.delete
    assert "newest verified backup" in decided.keep["b002"]
    # Newer backups are not yet proven: none of them is deleted either.
    assert decided.delete == ["b000", "b001"]


def test_a_newer_verified_backup_releases_the_older_one() -> None:
    backups = daily(30, b002={"verified": True}, b028={"verified": True})
    decided = plan(backups, Retention(daily=3, weekly=0, monthly=0))
    assert "b002" in decided.delete
    assert set(decided.keep) == {"b027", "b028", "b029"}


def test_a_legal_hold_is_never_deleted() -> None:
    backups = daily(30, b005={"on_hold": True}, b029={"verified": True})
    decided = plan(backups, Retention(daily=1, weekly=0, monthly=0))
    assert decided.keep["b005"] == ["legal hold"]
    assert set(decided.keep) == {"b005", "b029"}


def test_several_backups_a_day_keep_only_the_days_newest() -> None:
    backups = [Candidate(id=f"h{hour:02d}", taken_at=START + timedelta(hours=hour)) for hour in range(48)]
    decided = plan(backups, Retention(daily=2, weekly=0, monthly=0))
    # From Jan 1 02:00: h21 is Jan 1's last (23:00), h45 Jan 2's last, h47 the newest (Jan 3 01:00).
    assert set(decided.keep) == {"h45", "h47"}


def test_retention_must_keep_something() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="keeps nothing"):
        Retention(daily=0, weekly=0, monthly=0)
