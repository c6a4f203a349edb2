"""The MongoDB engine: a logical backup restored into a scratch database and compared, on mongomock.

No MongoDB server can be installed where these tests run; `test_real_server` repeats the round
trip against one when ``ZEROTOUCH_TEST_MONGODB_URL`` names it (a database of its own, dropped after).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any

import bson
import mongomock
import pymongo
import pytest

from activities.backup_mongodb import MongoEngine, file_for, scratch_database
from activities.mongo_adapter import MongoAdapter
from zerotouch.backup_models import BackupManifest, EngineBackup
from zerotouch.backups import BackupTarget

REAL_URL = os.environ.get("ZEROTOUCH_TEST_MONGODB_URL", "")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def target(database: str = "shop", collections: list[str] | None = None) -> BackupTarget:
    return BackupTarget(name="shop-mongo", engine="mongodb", connection="main", database=database,
                        collections=collections or [])


def manifest_of(backup: EngineBackup) -> BackupManifest:
    return BackupManifest(**backup.model_dump(), id="shop-mongo-20261130T120000Z", target="shop-mongo",
                          engine="mongodb", started_at=NOW, finished_at=NOW)


def seed(client: Any, database: str = "shop") -> None:
    """Documents of every awkward BSON type, an index, and an empty collection."""
    db = client[database]
    db.orders.insert_many([
        {"_id": bson.ObjectId(), "n": i, "total": bson.Decimal128(f"{i}.25"), "big": bson.Int64(2**40 + i),
         "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i), "ratio": i / 7,
         "tags": ["a", {"nested": i}], "blob": bson.Binary(bytes([i % 256]) * 3), "note": "line\nbreak"}
        for i in range(2500)], ordered=True)
    db.orders.create_index([("n", pymongo.ASCENDING)], unique=True, name="by_n")
    db.customers.insert_many([{"_id": f"c{i}", "name": f"Customer {i}", "vip": i % 2 == 0} for i in range(20)])
    db.create_collection("empty")


@pytest.fixture
def client() -> mongomock.MongoClient[dict[str, Any]]:
    mock: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient()
    seed(mock)
    return mock


@pytest.fixture
def engine(client: Any) -> MongoEngine:
    return MongoEngine(url_for=lambda ref: f"mongodb://{ref}.invalid", client_factory=lambda _url: client)


def back_up(engine: MongoEngine, tmp_path: Path, database: str = "shop") -> tuple[BackupManifest, Path]:
    data = tmp_path / "data"
    data.mkdir()
    return manifest_of(engine.backup(target(database), data)), data


def scratch_dbs(client: Any) -> list[str]:
    return [name for name in client.list_database_names() if name.startswith("zt_verify_")]


def test_backup_then_verify_restores_every_collection(engine: MongoEngine, client: Any, tmp_path: Path) -> None:
    manifest, data = back_up(engine, tmp_path)
    assert {k: v.rows for k, v in manifest.tables.items()} == {"customers": 20, "empty": 0, "orders": 2500}
    assert len((data / "orders.jsonl").read_text().splitlines()) == 2500
    assert manifest.details["indexes"] == {"customers": [], "empty": [], "orders": ["by_n"]}
    # The backup is what is restored: later writes to the source neither fail nor reach the check.
    client.shop.customers.insert_one({"_id": "late", "name": "after the backup"})

    result = engine.verify(target(), manifest, data, scratch=tmp_path / "shop-mongo-v1", recovery_target_time=None)

    assert [c.name for c in result.checks if not c.ok] == []
    assert {c.name for c in result.checks} >= {"collection orders", "collection customers", "collection empty",
                                               "backup file orders.jsonl"}
    assert result.rto_seconds is not None and result.rto_seconds > 0
    assert result.rpo_seconds is None and "RPO is not measured" in result.recovery_target
    assert scratch_dbs(client) == []
    assert client.shop.customers.count_documents({}) == 21  # the source untouched


def _truncate(path: Path) -> None:
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 40])


def _garble(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[7] = '{"_id": {"$oid": "not-an-object-id"}}\n'
    path.write_text("".join(lines))


def _duplicate(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[0]]))


@pytest.mark.parametrize("corrupt", [_truncate, _garble, _duplicate], ids=["truncated", "garbled", "duplicated"])
def test_a_damaged_backup_file_fails_verification(engine: MongoEngine, client: Any, tmp_path: Path,
                                                  corrupt: Any) -> None:
    manifest, data = back_up(engine, tmp_path)
    corrupt(data / "orders.jsonl")

    result = engine.verify(target(), manifest, data, scratch=tmp_path / "v-corrupt", recovery_target_time=None)

    failed = {c.name: c.output for c in result.checks if not c.ok}
    assert "backup file orders.jsonl" in failed and "collection orders" in failed, failed
    assert not any(name.endswith("customers") for name in failed)
    assert scratch_dbs(client) == []


def test_a_changed_document_is_a_hash_mismatch(engine: MongoEngine, client: Any, tmp_path: Path) -> None:
    """Same count, every line valid: only the content hash can tell."""
    manifest, data = back_up(engine, tmp_path)
    path = data / "customers.jsonl"
    path.write_text(path.read_text().replace('"Customer 3"', '"Customer 3 (edited)"'))

    result = engine.verify(target(), manifest, data, scratch=tmp_path / "v-changed", recovery_target_time=None)

    failed = {c.name: c.output for c in result.checks if not c.ok}
    assert list(failed) == ["collection customers"]
    assert "content hash" in failed["collection customers"]
    assert "documents restored" not in failed["collection customers"]


def test_a_missing_file_fails_and_the_rest_still_verify(engine: MongoEngine, client: Any, tmp_path: Path) -> None:
    manifest, data = back_up(engine, tmp_path)
    (data / "customers.jsonl").unlink()

    result = engine.verify(target(), manifest, data, scratch=tmp_path / "v-missing", recovery_target_time=None)

    assert {c.name for c in result.checks if not c.ok} == {"backup file customers.jsonl", "collection customers"}


def test_lost_index_definitions_are_detected(engine: MongoEngine, client: Any, tmp_path: Path) -> None:
    manifest, data = back_up(engine, tmp_path)
    (data / "indexes.json").write_text("{}")

    result = engine.verify(target(), manifest, data, scratch=tmp_path / "v-indexes", recovery_target_time=None)

    failed = {c.name: c.output for c in result.checks if not c.ok}
    assert list(failed) == ["collection orders"]
    assert "indexes [] restored, ['by_n'] backed up" in failed["collection orders"]


def test_the_scratch_database_is_dropped_when_the_restore_breaks(engine: MongoEngine, client: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, data = back_up(engine, tmp_path)

    def server_gone(*_args: Any) -> None:
        raise pymongo.errors.AutoReconnect("connection reset")

    monkeypatch.setattr(MongoAdapter, "create_index", server_gone)
    with pytest.raises(pymongo.errors.AutoReconnect):
        engine.verify(target(), manifest, data, scratch=tmp_path / "v-broken", recovery_target_time=None)
    assert scratch_dbs(client) == []


def test_sweep_drops_a_leftover_scratch_database(engine: MongoEngine, client: Any, tmp_path: Path) -> None:
    leftover = scratch_database("shop-mongo-v7")
    client[leftover].orders.insert_one({"_id": 1})
    client["zt_verify_other"].orders.insert_one({"_id": 1})

    engine.sweep(target(), tmp_path / "shop-mongo-v7")
    engine.sweep(target(), tmp_path / "never-started")  # nothing to drop is fine

    assert scratch_dbs(client) == ["zt_verify_other"]
    assert client.shop.orders.count_documents({}) == 2500


@pytest.mark.parametrize("name", ["v1", "shop-mongo-20261130T120000Z-verify-1", "x" * 200, "Ünïcode/..\\$ name"])
def test_scratch_database_names_are_short_valid_and_stable(name: str) -> None:
    database = scratch_database(name)
    assert database == scratch_database(name)
    assert len(database) <= 38 and database.startswith("zt_verify_")
    assert all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in database)


def test_long_scratch_names_sharing_a_prefix_get_distinct_databases() -> None:
    assert scratch_database("a" * 60 + "1") != scratch_database("a" * 60 + "2")


def test_collection_names_never_escape_the_backup_directory() -> None:
    assert file_for("orders") == "orders.jsonl"
    assert "/" not in file_for("../../etc/passwd") and not file_for("..").startswith("../")


def test_a_collection_named_in_the_policy_but_absent_is_an_error(engine: MongoEngine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['refunds'\] not in database shop"):
        engine.backup(target(collections=["orders", "refunds"]), tmp_path)


def test_a_database_without_collections_is_an_error_not_an_empty_backup(engine: MongoEngine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="database shpo has no collections"):
        engine.backup(target("shpo"), tmp_path)


@pytest.mark.skipif(not REAL_URL, reason="set ZEROTOUCH_TEST_MONGODB_URL to run against a real MongoDB server")
def test_real_server(tmp_path: Path) -> None:
    """The same round trip on a real server, in a database of its own that is dropped after."""
    database = f"zt_test_{uuid.uuid4().hex[:12]}"
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(REAL_URL, serverSelectionTimeoutMS=10_000)
    try:
        seed(client, database)
        # A real server lists a text index as _fts/_ftsx (mongomock does not): its restore is only tested here.
        client[database].customers.create_index([("name", pymongo.TEXT)], name="name_text")
        engine = MongoEngine(url_for=lambda _ref: REAL_URL)
        manifest, data = back_up(engine, tmp_path, database)
        result = engine.verify(target(database), manifest, data, scratch=tmp_path / f"real-{database}",
                               recovery_target_time=None)
        assert [c.name for c in result.checks if not c.ok] == []
        assert manifest.tool_versions["mongodb"] == client.server_info()["version"]
        assert scratch_database(f"real-{database}") not in client.list_database_names()
    finally:
        client.drop_database(database)
        client.close()
