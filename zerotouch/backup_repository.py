"""The backup repository: where finished backups live, with their verifications and legal holds.

`BackupRepository` is the interface (object storage can follow); `DirectoryRepository` keeps
``<root>/<target>/<backup id>/`` with the engine's files under ``data/`` and ``manifest.json``.
A backup is written into ``<root>/<target>/.partial-<id>/`` and becomes visible only by one
atomic rename after its manifest (with every file's size and sha256) was written and synced: a
crash mid-backup leaves a partial directory that is never listed and is removed by the next
attempt of the same ID. Verifications are appended as ``verifications/<id>.json``; a legal hold
is ``hold.json``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from zerotouch.backup_models import BackupManifest, BackupRecord, FileEntry, LegalHold, VerificationReport

MANIFEST = "manifest.json"
DATA = "data"
VERIFICATIONS = "verifications"
HOLD = "hold.json"
PARTIAL_PREFIX = ".partial-"
_CHUNK = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # no separators, never hidden: stays in its directory


class BackupNotFound(KeyError):
    """No finished backup with that ID."""


class BackupRepository(Protocol):
    def staging(self, target: str, backup_id: str) -> Path: ...
    def commit(self, manifest: BackupManifest) -> BackupManifest: ...
    def find(self, target: str, backup_id: str) -> BackupRecord | None: ...
    def get(self, target: str, backup_id: str) -> BackupRecord: ...
    def backups(self, target: str) -> list[BackupRecord]: ...
    def targets(self) -> list[str]: ...
    def data_path(self, target: str, backup_id: str) -> Path: ...
    def check_files(self, manifest: BackupManifest) -> list[str]: ...
    def record_verification(self, report: VerificationReport) -> None: ...
    def set_hold(self, target: str, backup_id: str, hold: LegalHold | None) -> None: ...
    def delete(self, target: str, backup_id: str) -> None: ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _write_synced(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


class DirectoryRepository:
    """A repository in a local (or mounted) directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _dir(self, target: str, backup_id: str, prefix: str = "") -> Path:
        if not (_NAME.match(target) and _NAME.match(backup_id)):
            raise ValueError(f"bad target or backup ID: {target!r}/{backup_id!r}")
        return self.root / target / (prefix + backup_id)

    def staging(self, target: str, backup_id: str) -> Path:
        """An empty staging directory for ``backup_id``; a previous attempt's leftovers are removed."""
        staging = self._dir(target, backup_id, PARTIAL_PREFIX)
        # Backups are whole copies of the data (personal data included): only the worker's user reads them.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        (staging / DATA).mkdir(parents=True)
        return staging / DATA

    def commit(self, manifest: BackupManifest) -> BackupManifest:
        """Checksum the staged files, write the manifest last, and publish the backup atomically."""
        staging = self._dir(manifest.target, manifest.id, PARTIAL_PREFIX)
        final = self._dir(manifest.target, manifest.id)
        if (final / MANIFEST).is_file():
            return self.get(manifest.target, manifest.id).manifest  # an earlier attempt already published it
        files = [FileEntry(path=str(path.relative_to(staging)), size=path.stat().st_size, sha256=sha256_of(path))
                 for path in _walk(staging / DATA)]
        complete = manifest.model_copy(update={"files": files, "size_bytes": sum(f.size for f in files)})
        _write_synced(staging / MANIFEST, complete.model_dump_json(indent=2))
        staging.rename(final)
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return complete

    def find(self, target: str, backup_id: str) -> BackupRecord | None:
        directory = self._dir(target, backup_id)
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            return None
        manifest = BackupManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
        reports = [VerificationReport.model_validate_json(p.read_text(encoding="utf-8"))
                   for p in sorted((directory / VERIFICATIONS).glob("*.json"))]
        reports.sort(key=lambda report: report.finished_at)
        hold_path = directory / HOLD
        hold = LegalHold.model_validate_json(hold_path.read_text(encoding="utf-8")) if hold_path.is_file() else None
        return BackupRecord(manifest=manifest, verifications=reports, hold=hold)

    def get(self, target: str, backup_id: str) -> BackupRecord:
        record = self.find(target, backup_id)
        if record is None:
            raise BackupNotFound(f"no finished backup {backup_id!r} of target {target!r} in {self.root}")
        return record

    def backups(self, target: str) -> list[BackupRecord]:
        """Finished backups of ``target``, oldest first; partial ones are never listed."""
        directory = self.root / target
        if not directory.is_dir():
            return []
        found = [self.find(target, child.name) for child in directory.iterdir()
                 if child.is_dir() and not child.name.startswith(".")]
        records = [record for record in found if record is not None]
        return sorted(records, key=lambda record: (record.manifest.started_at, record.manifest.id))

    def targets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(child.name for child in self.root.iterdir() if child.is_dir() and not child.name.startswith("."))

    def data_path(self, target: str, backup_id: str) -> Path:
        self.get(target, backup_id)
        return self._dir(target, backup_id) / DATA

    def check_files(self, manifest: BackupManifest) -> list[str]:
        """Every difference between the files and the manifest: missing, resized, changed, extra."""
        directory = self._dir(manifest.target, manifest.id)
        problems = []
        listed = {entry.path for entry in manifest.files}
        for entry in manifest.files:
            path = directory / entry.path
            if not path.is_file():
                problems.append(f"{entry.path}: missing")
            elif path.stat().st_size != entry.size:
                problems.append(f"{entry.path}: {path.stat().st_size} bytes, manifest says {entry.size}")
            elif sha256_of(path) != entry.sha256:
                problems.append(f"{entry.path}: content changed (sha256 differs from the manifest)")
        for path in _walk(directory / DATA):
            if str(path.relative_to(directory)) not in listed:
                problems.append(f"{path.relative_to(directory)}: not in the manifest")
        return problems

    def record_verification(self, report: VerificationReport) -> None:
        directory = self._dir(report.target, report.backup_id)
        self.get(report.target, report.backup_id)
        (directory / VERIFICATIONS).mkdir(exist_ok=True)
        _write_synced(directory / VERIFICATIONS / f"{report.id}.json", report.model_dump_json(indent=2))

    def set_hold(self, target: str, backup_id: str, hold: LegalHold | None) -> None:
        directory = self._dir(target, backup_id)
        self.get(target, backup_id)
        if hold is None:
            (directory / HOLD).unlink(missing_ok=True)
        else:
            _write_synced(directory / HOLD, hold.model_dump_json(indent=2))

    def delete(self, target: str, backup_id: str) -> None:
        """Remove a backup: unpublish it first (rename), so a crash half-way leaves nothing listed."""
        directory = self._dir(target, backup_id)
        if not directory.exists():
            return
        doomed = self._dir(target, backup_id, f"{PARTIAL_PREFIX}deleting-")
        shutil.rmtree(doomed, ignore_errors=True)
        directory.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def open_repository(location: str, base: Path | None = None) -> BackupRepository:
    """A repository by location: a directory path (``file://`` prefix optional), relative ones in ``base``."""
    path = location.removeprefix("file://")
    if "://" in path:
        raise ValueError(f"unsupported backup repository {location!r}: only directories for now")
    if base is not None and not Path(path).is_absolute():
        return DirectoryRepository(base / path)
    return DirectoryRepository(path)
