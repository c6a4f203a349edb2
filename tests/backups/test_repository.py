"""The directory repository: a backup is listed only once its manifest is written; files are checked against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from zerotouch.backup_models import BackupManifest, CheckResult, LegalHold, VerificationReport
from zerotouch.backup_repository import BackupNotFound, DirectoryRepository, open_repository

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def manifest(backup_id: str, at: datetime = T0) -> BackupManifest:
    return BackupManifest(id=backup_id, target="db", engine="postgres", method="logical", started_at=at,
                          finished_at=at + timedelta(seconds=5))


def write_backup(repo: DirectoryRepository, backup_id: str, at: datetime = T0) -> BackupManifest:
    data = repo.staging("db", backup_id)
    (data / "db.dump").write_bytes(b"PGDMP" + bytes(range(256)) * 40)
    (data / "sub").mkdir()
    (data / "sub" / "part").write_text("second file")
    return repo.commit(manifest(backup_id, at))


def test_a_staged_backup_is_not_listed_until_committed(tmp_path: Path) -> None:
    repo = DirectoryRepository(tmp_path)
    data = repo.staging("db", "db-1")
    (data / "db.dump").write_bytes(b"half written")
    assert repo.backups("db") == [] and repo.find("db", "db-1") is None
    committed = repo.commit(manifest("db-1"))
    assert [r.manifest.id for r in repo.backups("db")] == ["db-1"]
    assert committed.size_bytes == len(b"half written")
    assert [(f.path, f.size) for f in committed.files] == [("data/db.dump", 12)]


def test_a_crashed_attempt_is_replaced_by_the_next(tmp_path: Path) -> None:
    repo = DirectoryRepository(tmp_path)
    (repo.staging("db", "db-1") / "leftover").write_text("from a killed worker")
    data = repo.staging("db", "db-1")  # the retry starts clean
    assert list(data.iterdir()) == []
    (data / "db.dump").write_text("complete")
    repo.commit(manifest("db-1"))
    assert [f.path for f in repo.get("db", "db-1").manifest.files] == ["data/db.dump"]
    # Committing the same ID again (a retry after the commit) returns the published backup untouched.
    again = repo.commit(manifest("db-1"))
    assert [f.path for f in again.files] == ["data/db.dump"]


def test_check_files_names_every_difference(tmp_path: Path) -> None:
    repo = DirectoryRepository(tmp_path)
    written = write_backup(repo, "db-1")
    assert repo.check_files(written) == []
    data = repo.data_path("db", "db-1")
    dump = bytearray((data / "db.dump").read_bytes())
    dump[100] ^= 0xFF  # one flipped byte, same size
    (data / "db.dump").write_bytes(bytes(dump))
    (data / "sub" / "part").write_text("short")
    (data / "extra").write_text("not in the manifest")
    problems = repo.check_files(written)
    assert any("data/db.dump: content changed" in p for p in problems)
    assert any("data/sub/part" in p and "bytes" in p for p in problems)
    assert any("data/extra: not in the manifest" in p for p in problems)
    (data / "db.dump").unlink()
    assert any("data/db.dump: missing" in p for p in repo.check_files(written))


def test_verifications_holds_and_deletion(tmp_path: Path) -> None:
    repo = DirectoryRepository(tmp_path)
    write_backup(repo, "db-1")
    write_backup(repo, "db-2", T0 + timedelta(days=1))
    for index, ok in enumerate((False, True)):
        repo.record_verification(VerificationReport(
            id=f"db-1-v{index}", backup_id="db-1", target="db", engine="postgres", ok=ok,
            started_at=T0 + timedelta(hours=index), finished_at=T0 + timedelta(hours=index, minutes=1),
            checks=[CheckResult(name="restore", ok=ok)]))
    first = repo.get("db", "db-1")
    assert [v.id for v in first.verifications] == ["db-1-v0", "db-1-v1"] and first.verified
    assert repo.get("db", "db-2").last_verification is None
    repo.set_hold("db", "db-2", LegalHold(by="legal", reason="case 42", at=T0))
    assert repo.get("db", "db-2").hold is not None
    repo.set_hold("db", "db-2", None)
    assert repo.get("db", "db-2").hold is None
    repo.delete("db", "db-1")
    assert [r.manifest.id for r in repo.backups("db")] == ["db-2"]
    with pytest.raises(BackupNotFound):
        repo.get("db", "db-1")
    assert repo.targets() == ["db"]


def test_names_cannot_escape_the_repository(tmp_path: Path) -> None:
    repo = DirectoryRepository(tmp_path)
    with pytest.raises(ValueError, match="bad target or backup ID"):
        repo.staging("db", "../../etc")
    with pytest.raises(ValueError, match="only directories"):
        open_repository("s3://bucket/backups")
    assert isinstance(open_repository("backups", tmp_path), DirectoryRepository)
    assert open_repository("backups", tmp_path).root == (tmp_path / "backups").resolve()  # type: ignore[attr-defined]
