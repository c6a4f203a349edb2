"""The WAL archive: segment names, continuity from a backup's start, copying for a restore, pruning.

A segment name is ``TTTTTTTTLLLLLLLLSSSSSSSS`` (timeline, then the segment number split into a
"log" and a "seg" part, how many segs per log depending on the segment size). PostgreSQL's
recovery stops quietly at the first segment its restore_command cannot fetch, so a verification
proves continuity itself before it restores: every segment from the backup's first one to the
newest archived one must be there.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")
# pg_archivecleanup's set: segments, their .partial leftovers and .backup history files.
_PRUNABLE = re.compile(r"^([0-9A-F]{24})(\.partial|\.[0-9A-F]{8}\.backup)?$")


def segment_number(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The position of segment ``name`` on its timeline (timeline excluded)."""
    per_log = 0x100000000 // segment_size
    return int(name[8:16], 16) * per_log + int(name[16:24], 16)


def segment_name(timeline: int, number: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per_log = 0x100000000 // segment_size
    return f"{timeline:08X}{number // per_log:08X}{number % per_log:08X}"


def timeline_of(name: str) -> int:
    return int(name[:8], 16)


@dataclass(frozen=True)
class WalRange:
    """The archived segments a restore of one backup can use: first..newest on its timeline."""

    first: str
    newest: str
    segments: list[str]


class WalGap(Exception):  # a finding reported as a failed check
    """The archive lacks a segment the restore needs; the message names it."""


def archived_range(archive: Path, first: str, segment_size: int = DEFAULT_SEGMENT_SIZE,
                   must_reach: str = "") -> WalRange:
    """The continuous run of segments from ``first`` to the newest archived one on ``first``'s timeline.

    Raises WalGap naming the first missing segment (or, with ``must_reach``, the segment the
    backup's restore point needs that has not been archived).
    """
    if not archive.is_dir():
        raise WalGap(f"WAL archive {archive} does not exist or is not a directory")
    timeline = timeline_of(first)
    start = segment_number(first, segment_size)
    present = {segment_number(p.name, segment_size) for p in archive.iterdir()
               if _SEGMENT.match(p.name) and timeline_of(p.name) == timeline}
    later = sorted(n for n in present if n >= start)
    if not later:
        raise WalGap(f"WAL gap: {first} missing (the backup's first segment is not in {archive})")
    newest = later[-1]
    if must_reach and segment_number(must_reach, segment_size) > newest:
        raise WalGap(f"WAL gap: {must_reach} missing (it holds the backup's restore point; newest archived is "
                     f"{segment_name(timeline, newest, segment_size)})")
    missing = [n for n in range(start, newest + 1) if n not in present]
    if missing:
        names = [segment_name(timeline, n, segment_size) for n in missing[:5]]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise WalGap(f"WAL gap: {', '.join(names)}{more} missing from {archive} "
                     f"(recovery would stop silently before it)")
    segments = [segment_name(timeline, n, segment_size) for n in range(start, newest + 1)]
    return WalRange(first=first, newest=segments[-1], segments=segments)


def copy_range(archive: Path, wal: WalRange, into: Path) -> int:
    """Copy the range's segments and every timeline history file into ``into``; return bytes copied.

    The scratch server reads only this copy: it can neither change the archive nor needs the
    permission to read it.
    """
    into.mkdir(parents=True, exist_ok=True)
    copied = 0
    names = [*wal.segments, *(p.name for p in archive.iterdir() if _HISTORY.match(p.name))]
    for name in names:
        shutil.copyfile(archive / name, into / name)
        copied += (into / name).stat().st_size
    return copied


def prune_archive(archive: Path, keep_from: str) -> int:
    """Delete archived WAL older than segment ``keep_from`` (any timeline), like pg_archivecleanup.

    History files are kept: they are tiny and recovery needs them to follow timelines.
    Returns the number of files deleted.
    """
    if not _SEGMENT.match(keep_from):
        raise ValueError(f"not a WAL segment name: {keep_from!r}")
    deleted = 0
    for path in archive.iterdir():
        match = _PRUNABLE.match(path.name)
        # Comparing without the timeline is what pg_archivecleanup does: positions are global.
        if match and match.group(1)[8:] < keep_from[8:]:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def parse_backup_label(text: str) -> tuple[str, str, int]:
    """``backup_label`` → (start LSN, first segment, timeline)."""
    start = re.search(r"^START WAL LOCATION: (\S+) \(file ([0-9A-F]{24})\)", text, re.MULTILINE)
    timeline = re.search(r"^START TIMELINE: (\d+)", text, re.MULTILINE)
    if not start or not timeline:
        raise ValueError(f"unexpected backup_label: {text[:200]!r}")
    return start.group(1), start.group(2), int(timeline.group(1))
