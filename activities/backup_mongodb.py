"""MongoDB logical backups, proven by restoring them into a scratch database and comparing.

A backup is one ``<collection>.jsonl`` per collection (canonical Extended JSON, one document a
line, so every BSON type round-trips) and ``indexes.json``. Each collection's count and content
hash are computed from the very lines written, so the manifest describes the file, whatever
writers did to the source meanwhile (no snapshot: a logical dump of a live database is per
collection, not one point in time).

The content hash is the sum modulo 2^256 of each line's sha256: independent of document order,
computed in constant memory however large the collection (sorting per-document digests is not),
and, unlike XOR, a document present twice does not cancel out.

Verification restores every file into ``zt_verify_<id>`` on the same server, reads it back in
`_id` order and compares counts, hashes and index names per collection; the scratch database is
dropped in ``finally``. It never writes to the source database.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymongo
from bson import json_util
from bson.binary import UuidRepresentation
from bson.codec_options import DatetimeConversion
from bson.errors import BSONError

from activities.backup_engine import SelfContainedBackups
from activities.mongo_adapter import BATCH, MongoAdapter, Rejected, pymongo_version
from zerotouch.backup_models import BackupManifest, CheckResult, EngineBackup, EngineVerification, TableStat
from zerotouch.backups import BackupTarget

SCRATCH_PREFIX = "zt_verify_"
SCRATCH_MAX = 38  # characters of a scratch database name
INDEXES = "indexes.json"
HASH_ALGORITHM = "sum of sha256(canonical Extended JSON line) mod 2^256"
# Canonical mode keeps every BSON type (Int64 vs Int32, Decimal128, binary subtypes); dates outside
# Python's range stay DatetimeMS, as the adapter reads them.
_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC,
                              uuid_representation=UuidRepresentation.UNSPECIFIED,
                              datetime_conversion=DatetimeConversion.DATETIME_AUTO)
_MODULUS = 1 << 256


def scratch_database(scratch_name: str) -> str:
    """``zt_verify_<id>``: deterministic (a later sweep finds it), ≤ 38 characters, letters, digits and _."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", scratch_name.lower()).strip("_") or "scratch"
    room = SCRATCH_MAX - len(SCRATCH_PREFIX)
    if len(cleaned) > room:
        # Two long verification IDs sharing a prefix must not share a scratch database.
        digest = hashlib.sha256(scratch_name.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:room - 9].rstrip('_')}_{digest}"
    return SCRATCH_PREFIX + cleaned


def file_for(collection: str) -> str:
    """Collection names may hold '/' or '..' when no list was given; quoting keeps the file inside the backup."""
    return quote(collection, safe="") + ".jsonl"


def encode(document: Mapping[str, Any]) -> str:
    return json_util.dumps(document, json_options=_JSON)


def decode(line: str) -> dict[str, Any]:
    document = json_util.loads(line, json_options=_JSON)
    if not isinstance(document, dict):
        raise ValueError(f"a line holds a JSON {type(document).__name__}, not a document")
    return document


class ContentHash:
    """The order-independent hash of a collection's lines, and their count."""

    def __init__(self) -> None:
        self.rows, self._sum = 0, 0

    def add(self, line: str) -> None:
        self.rows += 1
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(line.encode()).digest(), "big")) % _MODULUS

    @property
    def hex(self) -> str:
        return f"{self._sum:064x}"


class MongoEngine(SelfContainedBackups):
    """Logical MongoDB backups and their test restores through `MongoAdapter`.

    Args:
        url_for: resolves a target's connection reference to a URL (credentials stay out of history).
        client_factory: builds a client from a URL; tests pass one returning a ``mongomock.MongoClient``.
        heartbeat: told progress while documents stream, so a long dump or restore is not timed out.
    """

    def __init__(self, url_for: Callable[[str], str], client_factory: Callable[[str], Any] = pymongo.MongoClient,
                 heartbeat: Callable[[str], None] | None = None) -> None:
        self._url_for = url_for
        self._client_factory = client_factory
        self._heartbeat = heartbeat or (lambda _detail: None)

    def _adapter(self, target: BackupTarget) -> MongoAdapter:
        return MongoAdapter(self._client_factory(self._url_for(target.connection)))

    # --- backup ------------------------------------------------------------------------

    def backup(self, target: BackupTarget, into: Path) -> EngineBackup:
        """Write each collection as JSON lines, plus their indexes, and record counts and hashes."""
        adapter = self._adapter(target)
        try:
            version = adapter.server_version()
            present = adapter.collection_names(target.database)
            if not present:
                raise ValueError(f"target {target.name}: database {target.database} has no collections (missing or "
                                 "misspelt?); fix `database` in the policy")
            missing = sorted(set(target.collections) - set(present))
            if missing:
                raise ValueError(f"target {target.name}: collection(s) {missing} not in database {target.database}; "
                                 "fix `collections` in the policy")
            collections = sorted(target.collections) or present
            tables: dict[str, TableStat] = {}
            indexes: dict[str, list[dict[str, Any]]] = {}
            for collection in collections:
                tables[collection] = self._dump(adapter, target.database, collection, into / file_for(collection))
                indexes[collection] = adapter.indexes(target.database, collection)
            (into / INDEXES).write_text(json_util.dumps(indexes, json_options=_JSON, indent=1))
        finally:
            adapter.close()
        return EngineBackup(
            method="logical",
            source={"database": target.database, "connection": target.connection, "server_version": version},
            tool_versions={"pymongo": pymongo_version(), "mongodb": version},
            tables=tables,
            details={"server_version": version, "pymongo_version": pymongo_version(), "collections": collections,
                     "files": {c: file_for(c) for c in collections}, "hash": HASH_ALGORITHM,
                     "indexes": {c: [i["name"] for i in found] for c, found in indexes.items()}},
        )

    def _dump(self, adapter: MongoAdapter, database: str, collection: str, path: Path) -> TableStat:
        content = ContentHash()
        with path.open("w", encoding="utf-8") as out:
            for batch in adapter.documents(database, collection):
                for document in batch:
                    line = encode(document)
                    content.add(line)
                    out.write(line + "\n")
                self._heartbeat(f"backup {collection}: {content.rows} documents")
        return TableStat(rows=content.rows, hash=content.hex)

    # --- verification ------------------------------------------------------------------

    def verify(self, target: BackupTarget, manifest: BackupManifest, data: Path, *, scratch: Path,
               recovery_target_time: datetime | None) -> EngineVerification:
        """Restore into the scratch database, read it back and compare each collection with the manifest."""
        del recovery_target_time  # a logical dump has one recovery point: itself
        database = scratch_database(scratch.name)
        if database == target.database:
            raise ValueError(f"scratch database {database} is the source database; rename the source")
        checks: list[CheckResult] = []
        durations: dict[str, float] = {}
        adapter = self._adapter(target)
        try:
            version = adapter.server_version()
            started = time.monotonic()
            adapter.drop_database(database)  # a leftover of a killed attempt would add its documents
            indexes = self._read_indexes(data, checks)
            for collection in manifest.tables:
                checks.append(self._restore(adapter, database, collection, data, manifest,
                                            indexes.get(collection, [])))
            durations["restore"] = time.monotonic() - started
            compared = time.monotonic()
            recorded = manifest.details.get("indexes") or {}  # the manifest's word over the file's
            for collection, stat in manifest.tables.items():
                names = recorded.get(collection, [i["name"] for i in indexes.get(collection, [])])
                checks.append(self._compare(adapter, database, collection, stat, names))
            durations["compare"] = time.monotonic() - compared
            rto = time.monotonic() - started
        finally:
            dropped = time.monotonic()
            adapter.drop_database(database)
            durations["cleanup"] = time.monotonic() - dropped
            adapter.close()
        return EngineVerification(
            checks=checks,
            recovery_target="the dump itself (logical, per collection as read; no point-in-time recovery, "
                            "so RPO is not measured for MongoDB)",
            rto_seconds=rto, rpo_seconds=None,
            tool_versions={"pymongo": pymongo_version(), "mongodb": version},
            durations=durations,
        )

    def _read_indexes(self, data: Path, checks: list[CheckResult]) -> dict[str, list[dict[str, Any]]]:
        try:
            found = json_util.loads((data / INDEXES).read_text(), json_options=_JSON)
            if not isinstance(found, dict):
                raise ValueError("not an object of collection → indexes")
        except (OSError, ValueError, TypeError, BSONError) as error:
            checks.append(CheckResult(name=f"backup file {INDEXES}", ok=False, output=f"unreadable: {error}"))
            return {}
        return found

    def _lines(self, path: Path) -> Iterator[tuple[int, str]]:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.endswith("\n"):
                    raise ValueError(f"line {number} is cut short (no newline): the file is truncated")
                yield number, line[:-1]

    def _restore(self, adapter: MongoAdapter, database: str, collection: str, data: Path,
                 manifest: BackupManifest, indexes: list[dict[str, Any]]) -> CheckResult:
        """The file's lines must all parse, number what the manifest says, and be accepted by the server."""
        began = time.monotonic()
        name = file_for(collection)
        expected = manifest.tables[collection].rows
        lines = 0
        try:
            adapter.create_collection(database, collection)
            batch: list[dict[str, Any]] = []
            for number, line in self._lines(data / name):
                try:
                    batch.append(decode(line))
                except (ValueError, TypeError, KeyError, BSONError) as error:
                    raise ValueError(f"line {number} is not a canonical Extended JSON document: {error}") from None
                lines = number
                if len(batch) >= BATCH:
                    adapter.insert(database, collection, batch)
                    batch = []
                    self._heartbeat(f"restore {collection}: {lines} documents")
            adapter.insert(database, collection, batch)
            for index in indexes:
                adapter.create_index(database, collection, index)
        except (OSError, UnicodeDecodeError, ValueError, Rejected) as error:
            return CheckResult(name=f"backup file {name}", ok=False, seconds=time.monotonic() - began,
                               output=f"{error}; the restore of this collection stopped there")
        ok = lines == expected
        return CheckResult(name=f"backup file {name}", ok=ok, seconds=time.monotonic() - began,
                           output=f"{lines} documents parsed and restored, manifest says {expected}")

    def _compare(self, adapter: MongoAdapter, database: str, collection: str, stat: TableStat,
                 index_names: list[str]) -> CheckResult:
        """Read the restored collection back and compare count, content hash and index names."""
        began = time.monotonic()
        content = ContentHash()
        for batch in adapter.documents(database, collection):
            for document in batch:
                content.add(encode(document))
            self._heartbeat(f"compare {collection}: {content.rows} documents")
        problems = []
        if content.rows != stat.rows:
            problems.append(f"{content.rows} documents restored, {stat.rows} backed up")
        if content.hex != stat.hash:
            problems.append(f"content hash {content.hex[:16]}… differs from the backup's {stat.hash[:16]}…")
        wanted = sorted(index_names)
        restored = sorted(i["name"] for i in adapter.indexes(database, collection))
        if restored != wanted:
            problems.append(f"indexes {restored} restored, {wanted} backed up")
        output = "; ".join(problems) or f"{content.rows} documents, hash {content.hex[:16]}…, indexes {wanted}"
        return CheckResult(name=f"collection {collection}", ok=not problems, output=output,
                           seconds=time.monotonic() - began)

    def sweep(self, target: BackupTarget, scratch: Path) -> None:
        """Drop the scratch database a killed verification left (dropping a missing one is a no-op)."""
        database = scratch_database(scratch.name)
        if database == target.database:
            return
        adapter = self._adapter(target)
        try:
            adapter.drop_database(database)
        finally:
            adapter.close()

