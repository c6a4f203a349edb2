"""The WAL archive's arithmetic: continuity from a backup's first segment, and pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.pg_wal import WalGap, archived_range, prune_archive, segment_name, segment_number

MB = 1024 * 1024


def _archive(tmp_path: Path, names: list[str]) -> Path:
    for name in names:
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_segment_names_roll_over_by_segment_size() -> None:
    assert segment_name(1, 256) == "000000010000000100000000"  # 16 MB: 256 segments per "log"
    assert segment_name(1, 4096, MB) == "000000010000000100000000"  # 1 MB: 4096
    assert segment_number("0000000100000001000000FF") == 511
    assert segment_number(segment_name(3, 123456, MB), MB) == 123456


def test_a_continuous_range_runs_to_the_newest_segment(tmp_path: Path) -> None:
    archive = _archive(tmp_path, [segment_name(1, n) for n in range(250, 260)] + ["00000002.history",
                                                                                   "archtemp.x.1.2"])
    wal = archived_range(archive, segment_name(1, 252))
    assert wal.first == "0000000100000000000000FC" and wal.newest == "000000010000000100000003"
    assert len(wal.segments) == 8


def test_a_missing_segment_is_named(tmp_path: Path) -> None:
    archive = _archive(tmp_path, [segment_name(1, n) for n in (5, 6, 8, 9)])
    with pytest.raises(WalGap, match=r"^WAL gap: 000000010000000000000007 missing"):
        archived_range(archive, segment_name(1, 5))


def test_the_restore_points_segment_must_be_archived(tmp_path: Path) -> None:
    archive = _archive(tmp_path, [segment_name(1, n) for n in (5, 6)])
    with pytest.raises(WalGap, match="000000010000000000000009 missing"):
        archived_range(archive, segment_name(1, 5), must_reach=segment_name(1, 9))
    with pytest.raises(WalGap, match="the backup's first segment"):
        archived_range(archive, segment_name(1, 7))


def test_pruning_keeps_history_and_everything_from_the_oldest_needed_segment(tmp_path: Path) -> None:
    names = [segment_name(1, n) for n in range(1, 6)] + [segment_name(2, 6), "00000002.history",
                                                          f"{segment_name(1, 2)}.00000028.backup",
                                                          f"{segment_name(1, 3)}.partial"]
    archive = _archive(tmp_path, names)
    assert prune_archive(archive, segment_name(2, 4)) == 5  # segments 1-3, the .backup and the .partial
    assert sorted(p.name for p in archive.iterdir()) == sorted(
        [segment_name(1, 4), segment_name(1, 5), segment_name(2, 6), "00000002.history"])
